//! Build script: rebuilds the crate when an embedded migration changes.

// sqlx::migrate! reads the migrations at compile time.
fn main() {
    println!("cargo:rerun-if-changed=migrations");
}
