//! Shared by the benchmark binaries that drive the product as operators run it: the release
//! `coffer` binary started in a directory of its own, its CPU and memory read from `/proc`,
//! and a small HTTP/1.1 client that costs the machine less than the server it measures.

#![allow(clippy::float_arithmetic)] // seconds and cores for people to read, not money

pub mod product;
