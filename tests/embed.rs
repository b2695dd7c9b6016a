//! The embedding example (`cargo run --example embed`) runs, and its own
//! assertions hold: Rust arrays in, a host function called and checked,
//! source and a file run, arrays back out.

#[path = "../examples/embed.rs"]
mod embed;

#[test]
fn the_embedding_example_runs() {
    embed::main();
}
