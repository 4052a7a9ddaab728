//! Camera-controlled numbers into `timestamp`: any i64 times, any clock rate, any order of
//! sessions. Nothing panics (these tests run with overflow checks on), decode times come out
//! strictly increasing with pts >= dts, and normal streams pass through unchanged.

use media::timestamp::{Continuity, LIMIT, Timestamps, rescale};
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Op {
    Frame(i64, i64),
    NewSession,
}

/// Mostly arbitrary values, with a share of the extremes and of plausible timelines.
fn time() -> impl Strategy<Value = i64> {
    prop_oneof![
        3 => any::<i64>(),
        1 => Just(i64::MAX),
        1 => Just(i64::MIN),
        3 => -1_000_000i64..1_000_000,
    ]
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    let op = prop_oneof![
        8 => (time(), time()).prop_map(|(pts, dts)| Op::Frame(pts, dts)),
        1 => Just(Op::NewSession),
    ];
    prop::collection::vec(op, 1..200)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 500, ..ProptestConfig::default() })]

    #[test]
    fn continuity_is_monotonic_for_any_input(ops in ops()) {
        let mut c = Continuity::default();
        c.new_session();
        let mut last: Option<i64> = None;
        for op in ops {
            match op {
                Op::NewSession => c.new_session(),
                Op::Frame(pts, dts) => {
                    let t = c.adjust(Timestamps { pts, dts });
                    prop_assert!(t.pts >= t.dts, "{t:?}");
                    prop_assert!(last.is_none_or(|l| t.dts > l), "{last:?} then {t:?}");
                    prop_assert!(t.dts.abs() <= LIMIT + 200 * 90_000 * 60);
                    last = Some(t.dts);
                }
            }
        }
    }

    #[test]
    fn a_steady_stream_passes_unchanged(
        start in -1_000_000_000i64..1_000_000_000,
        step in 1i64..90_000,
        reorder in prop::collection::vec(0i64..4, 1..100),
    ) {
        let mut c = Continuity::default();
        c.new_session();
        for (i, r) in reorder.iter().enumerate() {
            let dts = start + i as i64 * step;
            let t = Timestamps { pts: dts + r * step, dts };
            prop_assert_eq!(c.adjust(t), t);
        }
    }

    #[test]
    fn rescale_saturates_and_keeps_order(a in any::<i64>(), b in any::<i64>(), rate in any::<u32>()) {
        let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
        prop_assert!(rescale(lo, rate) <= rescale(hi, rate));
        let exact = i128::from(a) * 90_000 / i128::from(rate.max(1));
        if let Ok(v) = i64::try_from(exact) {
            prop_assert_eq!(rescale(a, rate), v);
        } else {
            prop_assert_eq!(rescale(a, rate), if exact < 0 { i64::MIN } else { i64::MAX });
        }
    }
}
