//! Writes the fuzzers' seed corpus (`fuzz/corpus/<target>/seed-<name>`) from real
//! encodings (`emporium::fuzzing::seeds`). Run it after a wire or record format changes;
//! `fuzzing::tests::seeds_are_regenerated_byte_for_byte` fails until then.

fn main() -> std::io::Result<()> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus");
    let mut written = 0;
    for (target, name, bytes) in emporium::fuzzing::seeds::all() {
        let dir = root.join(target);
        std::fs::create_dir_all(&dir)?;
        std::fs::write(dir.join(format!("seed-{name}")), bytes)?;
        written += 1;
    }
    println!("wrote {written} seeds under {}", root.display());
    Ok(())
}
