fn main() {
    println!("camgate {}", env!("CARGO_PKG_VERSION"));
}
