//! The fixed seeds CI runs (500, in ten groups that nextest runs in parallel). A failure
//! names the seed and the command that replays it.

fn run(seeds: std::ops::Range<u64>) {
    for seed in seeds {
        if let Err(e) = coco_sim::run_seed(seed) {
            panic!("{e}\n  replay: cargo run -p coco-sim -- --from {seed} --seeds 1");
        }
    }
}

macro_rules! groups {
    ($($name:ident: $from:literal),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                run($from..$from + 50);
            }
        )*
    };
}

groups!(
    seeds_000: 0, seeds_050: 50, seeds_100: 100, seeds_150: 150, seeds_200: 200,
    seeds_250: 250, seeds_300: 300, seeds_350: 350, seeds_400: 400, seeds_450: 450,
);
