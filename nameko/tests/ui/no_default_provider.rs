use nameko::prelude::*;

struct Database;

#[derive(Dependencies)]
struct Svc {
    db: Database,
}

fn main() {}
