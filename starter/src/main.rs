//! The service binary: `run`, `call`, `dispatch`, `shell`, `show-config`.

use nameko_starter::{Catalog, Checkout, Ledger, Prices};

fn main() -> std::process::ExitCode {
    let prices = Prices::new([("tea", 2.5), ("cake", 4.0)]);
    nameko::services![Catalog, Checkout, Ledger]
        .with_state(prices)
        .main()
}
