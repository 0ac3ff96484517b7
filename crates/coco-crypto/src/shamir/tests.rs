use super::*;

fn secret(seed: u8) -> [u8; SECRET_KEY_BYTES] {
    std::array::from_fn(|i| seed.wrapping_mul(31).wrapping_add(u8::try_from(i).unwrap()))
}

/// Every subset of `0..n` with exactly `k` members, as index lists.
fn subsets(n: usize, k: usize) -> Vec<Vec<usize>> {
    (0u32..(1 << n))
        .filter(|mask| mask.count_ones() as usize == k)
        .map(|mask| (0..n).filter(|i| mask & (1 << i) != 0).collect())
        .collect()
}

fn pick(shares: &[Share], indices: &[usize]) -> Vec<Share> {
    indices.iter().map(|&i| shares[i].clone()).collect()
}

#[test]
fn field_arithmetic() {
    // FIPS-197 §4.2: {57} • {83} = {c1}.
    assert_eq!(gf_mul(0x57, 0x83), 0xc1);
    assert_eq!(gf_mul(0x57, 0x13), 0xfe);
    for a in 0..=255u8 {
        assert_eq!(gf_mul(a, 1), a);
        assert_eq!(gf_mul(a, 0), 0);
        for b in 0..=255u8 {
            assert_eq!(gf_mul(a, b), gf_mul(b, a));
        }
        if a != 0 {
            assert_eq!(gf_mul(a, gf_inv(a)), 1, "inverse of {a}");
        }
    }
    assert_eq!(gf_inv(0), 0);
}

#[test]
fn every_threshold_subset_recovers_the_secret() {
    for (threshold, n) in [(1u8, 1u8), (1, 3), (2, 3), (3, 3), (3, 5), (2, 5), (5, 5), (4, 7)] {
        let secret = secret(threshold ^ n);
        let shares = split_secret(&secret, threshold, n).unwrap();
        assert_eq!(shares.len(), usize::from(n));
        let ids: Vec<u8> = shares.iter().map(Share::id).collect();
        assert_eq!(ids, (1..=n).collect::<Vec<_>>());
        for size in usize::from(threshold)..=usize::from(n) {
            for subset in subsets(usize::from(n), size) {
                let mut chosen = pick(&shares, &subset);
                assert_eq!(combine_shares(&chosen).unwrap(), secret, "{subset:?} of {n}");
                chosen.reverse();
                assert_eq!(combine_shares(&chosen).unwrap(), secret);
            }
        }
    }
}

#[test]
fn threshold_one_shares_are_the_secret_and_max_split_works() {
    let secret = secret(9);
    for share in split_secret(&secret, 1, 4).unwrap() {
        assert_eq!(share.value(), &secret);
    }
    let shares = split_secret(&secret, SHAMIR_MAX_SHARES, SHAMIR_MAX_SHARES).unwrap();
    assert_eq!(combine_shares(&shares).unwrap(), secret);
    let fewer = &shares[1..];
    assert!(matches!(
        combine_shares(fewer),
        Err(ShamirError::NotEnoughShares { needed: 254, got: 253 })
    ));
}

#[test]
fn fewer_than_threshold_shares_do_not_yield_the_secret() {
    let mut differing_bytes = 0usize;
    for trial in 0..200u8 {
        let secret = secret(trial);
        let (threshold, n) = (2 + trial % 4, 6);
        let shares = split_secret(&secret, threshold, n).unwrap();
        for subset in subsets(usize::from(n), usize::from(threshold - 1)) {
            let chosen = pick(&shares, &subset);
            assert!(matches!(
                combine_shares(&chosen),
                Err(ShamirError::NotEnoughShares { got, .. }) if got == subset.len()
            ));
            let guess = interpolate_at_zero(&chosen);
            assert_ne!(guess, secret, "trial {trial} subset {subset:?}");
            differing_bytes += guess.iter().zip(&secret).filter(|(a, b)| a != b).count();
        }
    }
    // Each byte of a guess matches by chance with probability 1/256; a leak would show here.
    let total = 200 * 32 * 6; // lower bound on (subsets × bytes) across trials
    assert!(differing_bytes > total * 250 / 256, "{differing_bytes} of at least {total}");
}

#[test]
fn lowering_the_recorded_threshold_gives_garbage_not_the_secret() {
    let secret = secret(3);
    let shares = split_secret(&secret, 3, 5).unwrap();
    let forged: Vec<Share> = shares[..2]
        .iter()
        .map(|share| {
            let mut bytes = share.to_bytes();
            bytes[2] = 2;
            Share::from_bytes(&bytes).unwrap()
        })
        .collect();
    assert_ne!(combine_shares(&forged).unwrap(), secret);
}

#[test]
fn splits_are_randomised() {
    let secret = secret(1);
    let a = split_secret(&secret, 2, 3).unwrap();
    let b = split_secret(&secret, 2, 3).unwrap();
    assert_ne!(a, b);
    assert!(a.iter().all(|share| share.value() != &secret));
}

#[test]
fn bad_parameters_are_refused() {
    let secret = secret(0);
    for (threshold, shares) in [(0u8, 3u8), (4, 3), (0, 0), (2, 255), (255, 255)] {
        assert_eq!(
            split_secret(&secret, threshold, shares),
            Err(ShamirError::InvalidParameters { threshold, shares })
        );
    }
}

#[test]
fn bad_share_sets_are_refused() {
    let secret = secret(5);
    let shares = split_secret(&secret, 2, 3).unwrap();
    assert_eq!(combine_shares(&[]), Err(ShamirError::NotEnoughShares { needed: 1, got: 0 }));
    assert_eq!(
        combine_shares(&[shares[0].clone(), shares[0].clone()]),
        Err(ShamirError::DuplicateId(1))
    );
    let other = split_secret(&secret, 3, 3).unwrap();
    assert_eq!(
        combine_shares(&[shares[0].clone(), other[1].clone()]),
        Err(ShamirError::ThresholdMismatch { first: 2, other: 3 })
    );
    let zero = Share { id: 0, ..shares[1].clone() };
    assert_eq!(combine_shares(&[shares[0].clone(), zero]), Err(ShamirError::ZeroId));
}

#[test]
fn share_bytes_round_trip_and_every_truncation_is_refused() {
    let shares = split_secret(&secret(7), 2, 3).unwrap();
    let bytes = shares[2].to_bytes();
    assert_eq!(bytes.len(), SHARE_BYTES);
    assert_eq!(&bytes[..3], &[SHARE_FORMAT_VERSION, 3, 2]);
    assert_eq!(Share::from_bytes(&bytes).unwrap(), shares[2]);
    for cut in 0..bytes.len() {
        assert_eq!(
            Share::from_bytes(&bytes[..cut]),
            Err(ShamirError::Length { expected: SHARE_BYTES, found: cut }),
            "cut at {cut}"
        );
    }
    let mut long = bytes.clone();
    long.push(0);
    assert!(matches!(Share::from_bytes(&long), Err(ShamirError::Length { found: 36, .. })));
    let mut corrupt = bytes.clone();
    corrupt[0] = 2;
    assert_eq!(Share::from_bytes(&corrupt), Err(ShamirError::UnsupportedVersion(2)));
    corrupt = bytes.clone();
    corrupt[1] = 0;
    assert_eq!(Share::from_bytes(&corrupt), Err(ShamirError::ZeroId));
    corrupt = bytes;
    corrupt[2] = 0;
    assert_eq!(Share::from_bytes(&corrupt), Err(ShamirError::ZeroThreshold));
    assert_eq!(format!("{:?}", shares[2]), "Share { id: 3, threshold: 2, .. }");
}
