//! Encode/decode cost per APDU and BER-TLV parse cost of a ~20 KB structure.
#![allow(missing_docs)] // criterion's macros generate undocumented functions

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use kart_apdu::{tlv, Command};
use std::hint::black_box;

fn apdus(c: &mut Criterion) {
    let short = Command::new(0x00, 0xA4, 0x04, 0x00)
        .with_data(&[0xA0, 0x00, 0x00, 0x01, 0x51, 0x00, 0x00, 0x00])
        .unwrap()
        .with_le(256)
        .unwrap();
    let extended = Command::new(0x00, 0xDA, 0x00, 0x01)
        .with_data(&[0x5A; 2000])
        .unwrap()
        .with_le(65_536)
        .unwrap();
    for (name, cmd) in [("short_case4", short), ("extended_case4_2000B", extended)] {
        let raw = cmd.to_vec();
        let mut buf = vec![0u8; raw.len()];
        let mut g = c.benchmark_group(name);
        g.throughput(Throughput::Elements(1));
        g.bench_function("encode", |b| {
            b.iter(|| black_box(&cmd).encode(&mut buf).unwrap());
        });
        g.bench_function("decode", |b| {
            b.iter(|| Command::decode(black_box(&raw)).unwrap());
        });
        g.finish();
    }
}

/// A ~20 KB file image: 40 records of 5 fields each, the way an identity
/// file nests data objects (70 { 61 { 5F.. } }).
fn nested_20k() -> Vec<u8> {
    let records = (0..40u8)
        .map(|i| {
            let fields = [0x5F20, 0x5F2B, 0x5F35, 0x9F7F, 0x80]
                .iter()
                .map(|t| tlv::primitive(*t, &[i; 96]).unwrap())
                .collect();
            tlv::constructed(0x61, fields).unwrap()
        })
        .collect();
    tlv::to_vec(&tlv::constructed(0x70, records).unwrap())
}

fn tlv_parse(c: &mut Criterion) {
    let bytes = nested_20k();
    let mut g = c.benchmark_group("tlv");
    g.throughput(Throughput::Bytes(bytes.len() as u64));
    g.bench_function(format!("parse_{}B", bytes.len()), |b| {
        b.iter(|| tlv::parse(black_box(&bytes)).unwrap());
    });
    // Worst case the object bound allows: one object with 4095 empty children.
    let body = u16::try_from(2 * (tlv::MAX_OBJECTS - 1))
        .unwrap()
        .to_be_bytes();
    let mut wide = vec![0x30, 0x82, body[0], body[1]];
    wide.extend([0x80, 0x00].repeat(tlv::MAX_OBJECTS - 1));
    g.throughput(Throughput::Bytes(wide.len() as u64));
    g.bench_function("parse_wide_4095_children", |b| {
        b.iter(|| tlv::parse(black_box(&wide)).unwrap());
    });
    g.finish();
}

criterion_group!(benches, apdus, tlv_parse);
criterion_main!(benches);
