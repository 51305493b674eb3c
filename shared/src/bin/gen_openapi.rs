//! Prints the OpenAPI document (see `scripts/gen-contract.sh`).

fn main() {
    print!("{}", shared::openapi::document_json());
}
