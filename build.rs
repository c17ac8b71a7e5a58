//! Build-time switches: the PostgreSQL tests run when `CURATOR_TEST_POSTGRES` names a server
//! (otherwise they are listed as ignored, with the reason saying how to run them), and a
//! changed migration rebuilds the binary that embeds it.

fn main() {
    println!("cargo::rustc-check-cfg=cfg(postgres_tests)");
    println!("cargo::rerun-if-env-changed=CURATOR_TEST_POSTGRES");
    println!("cargo::rerun-if-changed=migrations");
    println!("cargo::rerun-if-changed=build.rs");
    if std::env::var_os("CURATOR_TEST_POSTGRES").is_some_and(|v| !v.is_empty()) {
        println!("cargo::rustc-cfg=postgres_tests");
    }
}
