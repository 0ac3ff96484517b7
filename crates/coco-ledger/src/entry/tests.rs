use super::*;
use proptest::prelude::*;

fn key(byte: u8) -> Aes256GcmKey {
    Aes256GcmKey::new(&[byte; 32]).unwrap()
}

fn parts<'a>(public: &'a [u8], private: &'a [u8]) -> EntryParts<'a> {
    EntryParts {
        view: View(3),
        seqno: Seqno(42),
        flags: 0,
        claims_digest: Digest([0xc1; 32]),
        commit_evidence_digest: Digest([0xce; 32]),
        public_maps: public,
        private_maps: private,
    }
}

#[test]
fn encode_decode_round_trip_and_exact_layout() {
    let key = key(7);
    let raw = encode_entry(&parts(b"public-maps", b"private-maps"), &key).unwrap();
    assert_eq!(raw.len(), 8 + 36 + 81 + 11 + 12);
    assert_eq!(raw[0], 1, "version");
    assert_eq!(raw[1], 0, "flags");
    assert_eq!(&raw[2..8], &((raw.len() - 8) as u64).to_le_bytes()[..6]);
    assert_eq!(&raw[24..32], &42u64.to_le_bytes(), "IV seqno");
    assert_eq!(&raw[32..36], &3u32.to_le_bytes(), "IV view");
    assert_eq!(&raw[36..44], &(81u64 + 11).to_le_bytes(), "public length");
    assert_eq!(raw[44], 4, "entry type");
    assert_eq!(&raw[45..53], &42i64.to_le_bytes());
    assert_eq!(&raw[53..85], &[0xc1; 32]);
    assert_eq!(&raw[85..117], &[0xce; 32]);
    assert_eq!(&raw[117..125], &[0; 8], "max conflict version");
    assert_eq!(&raw[125..136], b"public-maps");
    assert_ne!(&raw[136..], b"private-maps", "private domain is encrypted");

    let entry = decode_entry(&raw).unwrap();
    assert_eq!(entry.view(), View(3));
    assert_eq!(entry.seqno(), Seqno(42));
    assert_eq!(entry.flags(), 0);
    assert!(!entry.is_snapshot());
    assert_eq!(entry.entry_type(), 4);
    assert_eq!(entry.claims_digest(), Digest([0xc1; 32]));
    assert_eq!(entry.commit_evidence_digest(), Digest([0xce; 32]));
    assert_eq!(entry.public_maps(), b"public-maps");
    assert_eq!(entry.private_ciphertext().len(), 12);
    assert_eq!(entry.decrypt_private(&key).unwrap(), b"private-maps");
    assert_eq!(write_set_digest(&raw), sha256(&raw));
}

#[test]
fn empty_domains_still_authenticate_the_public_domain() {
    let key = key(7);
    let mut raw = encode_entry(&parts(b"", b""), &key).unwrap();
    assert_eq!(raw.len(), 8 + 36 + 81);
    assert!(decode_entry(&raw).unwrap().decrypt_private(&key).unwrap().is_empty());
    raw[60] ^= 1; // inside the claims digest
    assert!(matches!(
        decode_entry(&raw).unwrap().decrypt_private(&key),
        Err(Error::Decrypt { seqno: 42 })
    ));
}

#[test]
fn wrong_key_or_tampered_aad_fails_decryption() {
    let raw = encode_entry(&parts(b"pub", b"secret"), &key(7)).unwrap();
    let entry = decode_entry(&raw).unwrap();
    assert!(matches!(entry.decrypt_private(&key(8)), Err(Error::Decrypt { .. })));
    let mut tampered = raw.clone();
    let last_public = 44 + 81 + 2;
    tampered[last_public] ^= 0x20;
    let entry = decode_entry(&tampered).unwrap();
    assert_eq!(entry.public_maps(), b"puB");
    assert!(matches!(entry.decrypt_private(&key(7)), Err(Error::Decrypt { .. })));
}

#[test]
fn encode_refuses_out_of_range_values() {
    let key = key(1);
    let mut bad = parts(b"", b"");
    bad.view = View(View::MAX.0 + 1);
    assert!(matches!(encode_entry(&bad, &key), Err(Error::OutOfRange { field: "view", .. })));
    let mut bad = parts(b"", b"");
    bad.seqno = Seqno(u64::MAX);
    assert!(matches!(encode_entry(&bad, &key), Err(Error::OutOfRange { field: "seqno", .. })));
    let mut bad = parts(b"", b"");
    bad.flags = 4;
    assert!(matches!(encode_entry(&bad, &key), Err(Error::OutOfRange { field: "flags", .. })));
    let mut max_view = parts(b"", b"");
    max_view.view = View::MAX;
    max_view.flags = FORCE_LEDGER_CHUNK_AFTER | FORCE_LEDGER_CHUNK_BEFORE;
    let raw = encode_entry(&max_view, &key).unwrap();
    let entry = decode_entry(&raw).unwrap();
    assert_eq!(entry.view(), View::MAX);
    assert_eq!(entry.flags(), 3);
}

#[test]
fn decode_errors_name_the_offset() {
    let key = key(7);
    let raw = encode_entry(&parts(b"ab", b"cd"), &key).unwrap();
    let with = |at: usize, value: u8| {
        let mut copy = raw.clone();
        copy[at] = value;
        decode_entry(&copy).map(|_| ()).unwrap_err()
    };
    assert!(matches!(with(0, 2), Error::BadVersion { offset: 0, version: 2 }));
    assert!(matches!(with(1, 4), Error::BadFlags { offset: 1, flags: 4 }));
    assert!(matches!(with(44, 3), Error::UnsupportedEntryType { offset: 44, entry_type: 3 }));
    assert!(matches!(
        with(45, 43),
        Error::SeqnoMismatch { offset: 45, iv_seqno: 42, public_seqno: 43 }
    ));
    assert!(matches!(with(24, 41), Error::SeqnoMismatch { iv_seqno: 41, .. }));

    let mut small = raw.clone();
    small[2..8].copy_from_slice(&[35, 0, 0, 0, 0, 0]);
    assert!(matches!(decode_entry(&small), Err(Error::EntryTooSmall { offset: 2, size: 35 })));

    let mut longer = raw.clone();
    longer.push(0);
    assert!(matches!(
        decode_entry(&longer),
        Err(Error::SizeMismatch { declared, actual, .. }) if actual == declared + 1
    ));

    let mut long_public = raw.clone();
    long_public[36..44].copy_from_slice(&1000u64.to_le_bytes());
    assert!(matches!(
        decode_entry(&long_public),
        Err(Error::PublicDomainTooLong { offset: 36, length: 1000, .. })
    ));

    let mut short_public = raw.clone();
    short_public[36..44].copy_from_slice(&80u64.to_le_bytes());
    assert!(matches!(
        decode_entry(&short_public),
        Err(Error::Truncated { offset: 44, needed: 81, available: 80 })
    ));
}

#[test]
fn every_truncation_is_rejected() {
    let raw = encode_entry(&parts(b"public", b"private"), &key(7)).unwrap();
    for len in 0..raw.len() {
        let err = decode_entry(&raw[..len]).map(|_| ()).unwrap_err();
        assert!(matches!(err, Error::Truncated { .. }), "len {len}: {err}");
    }
}

/// Bytes whose alteration neither decoding nor the GCM tag notices: the flag bits of the
/// header. The Merkle leaf covers them (`write_set_digest` is over the raw bytes).
fn only_flag_bits_changed(at: usize, mask: u8) -> bool {
    at == 1 && mask & !ENTRY_FLAGS_MASK == 0
}

#[test]
fn every_single_byte_flip_is_rejected_by_decode_or_decrypt() {
    let key = key(7);
    let raw = encode_entry(&parts(b"public", b"private"), &key).unwrap();
    let digest = write_set_digest(&raw);
    for at in 0..raw.len() {
        for mask in [0x01u8, 0x02, 0x80, 0xff] {
            let mut copy = raw.clone();
            copy[at] ^= mask;
            let accepted = decode_entry(&copy).and_then(|entry| entry.decrypt_private(&key));
            if only_flag_bits_changed(at, mask) {
                assert!(accepted.is_ok());
                assert_ne!(write_set_digest(&copy), digest);
            } else {
                assert!(accepted.is_err(), "flip {mask:#x} at byte {at} went unnoticed");
            }
        }
    }
}

proptest! {
    #[test]
    fn round_trip_any_domains(
        public in proptest::collection::vec(any::<u8>(), 0..300),
        private in proptest::collection::vec(any::<u8>(), 0..300),
        view in 0..=View::MAX.0,
        seqno in 0..=i64::MAX as u64,
        flags in 0u8..4,
    ) {
        let key = key(9);
        let base = parts(&public, &private);
        let parts = EntryParts { view: View(view), seqno: Seqno(seqno), flags, ..base };
        let raw = encode_entry(&parts, &key).unwrap();
        let entry = decode_entry(&raw).unwrap();
        prop_assert_eq!(entry.view(), View(view));
        prop_assert_eq!(entry.seqno(), Seqno(seqno));
        prop_assert_eq!(entry.flags(), flags);
        prop_assert_eq!(entry.public_maps(), &public[..]);
        prop_assert_eq!(entry.decrypt_private(&key).unwrap(), private);
    }

    #[test]
    fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
        let _ = decode_entry(&bytes);
    }
}
