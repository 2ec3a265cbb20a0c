use nameko::prelude::*;

#[derive(Dependencies)]
struct Svc;

#[service(name = "svc")]
impl Svc {
    #[htp("GET", "/")]
    async fn index(&self) -> String {
        String::new()
    }
}

fn main() {}
