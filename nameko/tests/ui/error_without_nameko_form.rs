use nameko::prelude::*;

#[derive(Dependencies)]
struct Svc;

#[service(name = "svc")]
impl Svc {
    #[rpc]
    async fn read(&self, path: String) -> Result<String, std::io::Error> {
        std::fs::read_to_string(path)
    }
}

fn main() {}
