//! `dccgw-load`: the open-loop load generator. It lands with the load-test issue; until then it
//! only says so, so that nobody mistakes it for a measurement.

fn main() {
    eprintln!("dccgw-load: not built yet; see load-tests/README.md");
    std::process::exit(2);
}
