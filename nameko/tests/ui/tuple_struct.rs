use nameko::prelude::*;

#[derive(Dependencies)]
struct Svc(RpcProxy);

fn main() {}
