//! `neo-benches` holds the project's criterion benchmarks (`cargo bench -p neo-benches`).
//! Every bench measures Neo's path and, in the same run, the raw baseline it is judged
//! against; `scripts/bench.sh` reports the ratios. The library part is empty on purpose:
//! the benches live beside this file as `[[bench]]` targets.
