use nameko::prelude::*;

#[derive(Debug, NamekoError)]
#[nameko(exc_type = "ProductNotFound")]
struct ProductNotFound(u64);

fn main() {}
