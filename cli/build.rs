//! The release binary keeps line tables for mnode's own crates (readable backtraces; the
//! dependencies have none, see the release profile) and the linker compresses them: the
//! debug sections shrink to about a third, and Rust's backtraces read compressed sections as
//! they are.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    let release = std::env::var("PROFILE").as_deref() == Ok("release");
    let linux = std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux");
    if release && linux {
        println!("cargo:rustc-link-arg-bins=-Wl,--compress-debug-sections=zlib");
    }
}
