use nameko::prelude::*;

#[derive(Debug, NamekoError)]
#[nameko(deserialize_to_instance, display = "short of {amount} (balance {balance})")]
struct InsufficientFunds {
    balance: u64,
    amount: u64,
}

fn main() {}
