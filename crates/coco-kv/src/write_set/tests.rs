use proptest::prelude::*;

use super::*;
use crate::reader::{put_bytes, put_u64};

fn name(text: &str) -> MapName {
    MapName::new(text).unwrap()
}

fn sample() -> WriteSet {
    let mut write_set = WriteSet::new();
    write_set.put(&name("public:b"), b"k1".to_vec(), b"v1".to_vec());
    write_set.put(&name("public:b"), b"k0".to_vec(), Vec::new());
    write_set.remove(&name("public:b"), b"gone".to_vec());
    write_set.put(&name("private"), b"".to_vec(), b"secret".to_vec());
    write_set.remove(&name("public:a"), b"x".to_vec());
    write_set
}

fn kind(bytes: &[u8]) -> DecodeError {
    match WriteSet::decode_domain(bytes) {
        Err(Error::MalformedWriteSet { kind, .. }) => kind,
        other => panic!("expected malformed, got {other:?}"),
    }
}

/// Encodes one map entry by hand, so tests can build non-canonical inputs.
fn map_bytes(
    name: &[u8],
    read: (u64, u64),
    writes: &[(&[u8], &[u8])],
    removes: &[&[u8]],
) -> Vec<u8> {
    let mut out = Vec::new();
    put_bytes(&mut out, name);
    put_u64(&mut out, read.0);
    put_u64(&mut out, read.1);
    put_u64(&mut out, writes.len() as u64);
    for (key, value) in writes {
        put_bytes(&mut out, key);
        put_bytes(&mut out, value);
    }
    put_u64(&mut out, removes.len() as u64);
    for key in removes {
        put_bytes(&mut out, key);
    }
    out
}

#[test]
fn last_operation_on_a_key_wins() {
    let mut writes = MapWrites::default();
    writes.put(b"k".to_vec(), b"1".to_vec());
    writes.remove(b"k".to_vec());
    assert!(writes.writes().is_empty());
    assert!(writes.removes().contains(b"k".as_slice()));
    writes.put(b"k".to_vec(), b"2".to_vec());
    assert!(writes.removes().is_empty());
    assert_eq!(writes.writes().get(b"k".as_slice()), Some(&b"2".to_vec()));
}

#[test]
fn encodes_the_ccf_layout_split_by_domain() {
    let (public, private) = sample().encode_domains();
    let expected_public = [
        map_bytes(b"public:a", (0, 0), &[], &[b"x"]),
        map_bytes(b"public:b", (0, 0), &[(b"k0", b""), (b"k1", b"v1")], &[b"gone"]),
    ]
    .concat();
    assert_eq!(public, expected_public);
    assert_eq!(private, map_bytes(b"private", (0, 0), &[(b"", b"secret")], &[]));
    assert_eq!(sample().encoded_len(), (public.len() + private.len()) as u64);
    assert_eq!(WriteSet::new().encode_domains(), (Vec::new(), Vec::new()));
}

#[test]
fn round_trips_through_both_domains() {
    let (public, private) = sample().encode_domains();
    assert_eq!(WriteSet::decode_domains(&public, &private).unwrap(), sample());
    let merged = WriteSet::decode_domain(&public)
        .unwrap()
        .merge(WriteSet::decode_domain(&private).unwrap())
        .unwrap();
    assert_eq!(merged, sample());
    assert_eq!(WriteSet::decode_domain(&[]).unwrap(), WriteSet::new());
}

#[test]
fn refuses_maps_in_the_wrong_or_both_domains() {
    let (public, private) = sample().encode_domains();
    assert_eq!(
        WriteSet::decode_domains(&private, &public),
        Err(Error::MapInWrongDomain(name("private")))
    );
    assert_eq!(
        WriteSet::decode_domains(&public, &public),
        Err(Error::MapInWrongDomain(name("public:a")))
    );
    let public_set = WriteSet::decode_domain(&public).unwrap();
    assert_eq!(
        public_set.clone().merge(public_set),
        Err(Error::MapInBothDomains(name("public:a")))
    );
}

#[test]
fn refuses_each_non_canonical_input() {
    let good: &[(&[u8], &[u8])] = &[(b"k", b"v")];
    assert_eq!(kind(&map_bytes(b"m", (1, 0), good, &[])), DecodeError::ReadVersionNonZero(1));
    assert_eq!(kind(&map_bytes(b"m", (0, 2), good, &[])), DecodeError::ReadCountNonZero(2));
    assert_eq!(kind(&map_bytes(b"", (0, 0), good, &[])), DecodeError::BadMapName("empty"));
    assert_eq!(
        kind(&map_bytes(b"m\n", (0, 0), good, &[])),
        DecodeError::BadMapName("not printable ASCII")
    );
    assert_eq!(kind(&map_bytes(b"m", (0, 0), &[], &[])), DecodeError::EmptyMap);
    assert_eq!(kind(&map_bytes(b"m", (0, 0), good, &[b"k"])), DecodeError::KeyWrittenAndRemoved);
    let unsorted: &[(&[u8], &[u8])] = &[(b"b", b""), (b"a", b"")];
    assert_eq!(kind(&map_bytes(b"m", (0, 0), unsorted, &[])), DecodeError::KeysNotSorted);
    let duplicate: &[(&[u8], &[u8])] = &[(b"a", b""), (b"a", b"")];
    assert_eq!(kind(&map_bytes(b"m", (0, 0), duplicate, &[])), DecodeError::KeysNotSorted);
    assert_eq!(kind(&map_bytes(b"m", (0, 0), &[], &[b"b", b"a"])), DecodeError::KeysNotSorted);
    let one = map_bytes(b"m", (0, 0), good, &[]);
    assert_eq!(kind(&[one.clone(), one.clone()].concat()), DecodeError::MapNamesNotSorted);
    let other = map_bytes(b"a", (0, 0), good, &[]);
    assert_eq!(kind(&[one, other].concat()), DecodeError::MapNamesNotSorted);
}

#[test]
fn refuses_huge_lengths_and_counts_without_allocating() {
    let mut huge_name = Vec::new();
    put_u64(&mut huge_name, u64::MAX);
    assert!(matches!(kind(&huge_name), DecodeError::Truncated { needed: u64::MAX, .. }));
    let mut huge_count = Vec::new();
    put_bytes(&mut huge_count, b"m");
    put_u64(&mut huge_count, 0);
    put_u64(&mut huge_count, 0);
    put_u64(&mut huge_count, u64::MAX / 2);
    assert!(matches!(kind(&huge_count), DecodeError::CountTooLarge { .. }));
}

#[test]
fn every_truncation_of_the_sample_is_refused_or_a_prefix() {
    let (public, _) = sample().encode_domains();
    let first_map_len = map_bytes(b"public:a", (0, 0), &[], &[b"x"]).len();
    for len in 1..public.len() {
        match WriteSet::decode_domain(&public[..len]) {
            // Cutting exactly between two maps leaves a valid, shorter write set: the
            // ledger's entry framing, not this codec, detects that truncation.
            Ok(prefix) => {
                assert_eq!(len, first_map_len);
                assert_eq!(prefix.iter().count(), 1);
            }
            Err(Error::MalformedWriteSet { .. }) => {}
            Err(other) => panic!("unexpected {other}"),
        }
    }
}

fn arbitrary_write_set() -> impl Strategy<Value = WriteSet> {
    let names = prop_oneof![Just("public:a"), Just("public:b"), Just("c"), Just("d")];
    let key = proptest::collection::vec(any::<u8>(), 0..4);
    let value = proptest::option::of(proptest::collection::vec(any::<u8>(), 0..6));
    proptest::collection::vec((names, key, value), 0..12).prop_map(|operations| {
        let mut write_set = WriteSet::new();
        for (map, key, value) in operations {
            match value {
                Some(value) => write_set.put(&name(map), key, value),
                None => write_set.remove(&name(map), key),
            }
        }
        write_set
    })
}

proptest! {
    #[test]
    fn codec_round_trips_and_truncations_never_decode_the_same(write_set in arbitrary_write_set()) {
        let (public, private) = write_set.encode_domains();
        prop_assert_eq!(write_set.encoded_len(), (public.len() + private.len()) as u64);
        prop_assert_eq!(&WriteSet::decode_domains(&public, &private).unwrap(), &write_set);
        for domain in [&public, &private] {
            let whole = WriteSet::decode_domain(domain).unwrap();
            for len in 0..domain.len() {
                if let Ok(decoded) = WriteSet::decode_domain(&domain[..len]) {
                    prop_assert_ne!(&decoded, &whole);
                }
            }
        }
    }

    #[test]
    fn decoding_arbitrary_bytes_never_panics(
        bytes in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let _ = WriteSet::decode_domain(&bytes);
    }

    #[test]
    fn decoding_flipped_bytes_never_panics(
        write_set in arbitrary_write_set(),
        index: usize,
        bit in 0_u8..8,
    ) {
        let (public, _) = write_set.encode_domains();
        if !public.is_empty() {
            let mut corrupt = public.clone();
            corrupt[index % public.len()] ^= 1 << bit;
            // A flip may yield another valid encoding (a different key byte, say); then
            // it must be canonical: same length when re-encoded, and round-tripping.
            if let Ok(decoded) = WriteSet::decode_domain(&corrupt) {
                prop_assert_eq!(decoded.encoded_len(), corrupt.len() as u64);
                let (public, private) = decoded.encode_domains();
                let again = WriteSet::decode_domain(&public)
                    .unwrap()
                    .merge(WriteSet::decode_domain(&private).unwrap())
                    .unwrap();
                prop_assert_eq!(again, decoded);
            }
        }
    }
}
