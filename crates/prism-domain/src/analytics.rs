//! Analytics building blocks with no IO: log-bucketed latency histograms with a bounded relative
//! error, the status classes executions are grouped by, rollup granularities, and how a time window
//! is covered by rollup buckets.
//!
//! **Percentiles are approximate, with a proven bound.** A duration `v` (in µs, above 1 µs) falls in
//! bucket `i = ⌈35·log₂ v⌉`, i.e. `(γ^(i-1), γ^i]` with `γ = 2^(1/35) ≈ 1.0200`: bucket bounds grow
//! by 2 %. A bucket is reported as `2·γ^i/(1+γ)`, whose distance to any value of the bucket is at
//! most `(γ−1)/(γ+1)` ≈ 0.990 % of that value ([`RELATIVE_ERROR`]). Histograms merge by adding
//! counts, so a merged histogram's nearest-rank percentile lies in the same bucket as the exact
//! nearest-rank percentile of the raw values: the bound holds for any window and any merge, and is
//! tested. Durations of 1 µs or less share bucket 0 and are reported as 1 µs (≤ 1 µs absolute
//! error). Every estimate is also clamped to the exact maximum, which only moves it closer.

use crate::Timestamp;
use crate::request::Protocol;

/// Buckets per doubling of the duration.
pub const BUCKETS_PER_DOUBLING: u32 = 35;

/// The ratio between consecutive bucket bounds: `2^(1/35)`.
pub fn growth() -> f64 {
    2f64.powf(1.0 / f64::from(BUCKETS_PER_DOUBLING))
}

/// The largest relative error of a reported percentile (durations above 1 µs): `(γ−1)/(γ+1)`.
pub const RELATIVE_ERROR: f64 = 0.009_902;

/// The last bucket index: `i64::MAX` nanoseconds falls below it.
const MAX_BUCKET: usize = 35 * 54;

/// Counts of durations per logarithmic bucket. Dense over the range of buckets in use.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LatencyHistogram {
    /// The bucket index of `counts[0]`.
    offset: usize,
    counts: Vec<u64>,
}

/// A stored histogram that does not decode.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed latency histogram")]
pub struct MalformedHistogram;

impl LatencyHistogram {
    /// The bucket of a duration in nanoseconds.
    pub fn bucket_of(duration_ns: i64) -> usize {
        if duration_ns <= 1_000 {
            return 0;
        }
        let micros = duration_ns as f64 / 1_000.0;
        let index = (micros.log2() * f64::from(BUCKETS_PER_DOUBLING)).ceil();
        (index as usize).clamp(1, MAX_BUCKET)
    }

    /// The value reported for a bucket, in nanoseconds (see the module comment).
    pub fn representative_ns(index: usize) -> f64 {
        if index == 0 {
            return 1_000.0;
        }
        let upper = (index as f64 / f64::from(BUCKETS_PER_DOUBLING)).exp2();
        2.0 * upper / (1.0 + growth()) * 1_000.0
    }

    pub fn record(&mut self, duration_ns: i64) {
        self.add(Self::bucket_of(duration_ns), 1);
    }

    /// Adds `n` durations to bucket `index`.
    pub fn add(&mut self, index: usize, n: u64) {
        if n == 0 {
            return;
        }
        let index = index.min(MAX_BUCKET);
        if self.counts.is_empty() {
            self.offset = index;
            self.counts.push(n);
            return;
        }
        if index < self.offset {
            let grow = self.offset - index;
            self.counts.splice(0..0, std::iter::repeat_n(0, grow));
            self.offset = index;
        }
        let at = index - self.offset;
        if at >= self.counts.len() {
            self.counts.resize(at + 1, 0);
        }
        self.counts[at] += n;
    }

    pub fn merge(&mut self, other: &LatencyHistogram) {
        for (index, n) in other.buckets() {
            self.add(index, n);
        }
    }

    /// The non-empty buckets, by index.
    pub fn buckets(&self) -> impl Iterator<Item = (usize, u64)> + '_ {
        self.counts
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| (self.offset + i, *n))
    }

    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    pub fn is_empty(&self) -> bool {
        self.counts.iter().all(|n| *n == 0)
    }

    /// The nearest-rank `q`-quantile (`0 < q ≤ 1`: the value at rank `⌈q·n⌉` of the sorted
    /// durations), as its bucket's representative in nanoseconds. `None` when empty.
    pub fn quantile_ns(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (index, n) in self.buckets() {
            seen += n;
            if seen >= rank {
                return Some(Self::representative_ns(index));
            }
        }
        None
    }

    /// Counts per doubling of the duration — `(upper bound in ns, count)` from the first to the last
    /// non-empty doubling. Each is the union of 35 storage buckets, so the counts are exact.
    pub fn doublings(&self) -> Vec<(f64, u64)> {
        let per = BUCKETS_PER_DOUBLING as usize;
        let mut out: Vec<(f64, u64)> = Vec::new();
        let mut first: Option<usize> = None;
        for (index, n) in self.buckets() {
            let group = index.div_ceil(per);
            let first = *first.get_or_insert(group);
            while out.len() <= group - first {
                let g = first + out.len();
                out.push(((g as f64).exp2() * 1_000.0, 0));
            }
            out[group - first].1 += n;
        }
        out
    }

    /// The stored form: per non-empty bucket, its index and count as LEB128 varints. Indexes are
    /// absolute, so stored histograms concatenated (as the databases' string aggregates do) are
    /// still one valid histogram: their sum.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.counts.len() * 2);
        for (index, n) in self.buckets() {
            put_varint(&mut out, index as u64);
            put_varint(&mut out, n);
        }
        out
    }

    /// Adds a stored histogram, or a concatenation of them (see [`Self::encode`]), to this one.
    pub fn add_encoded(&mut self, mut bytes: &[u8]) -> Result<(), MalformedHistogram> {
        while !bytes.is_empty() {
            let index = take_varint(&mut bytes)?;
            let n = take_varint(&mut bytes)?;
            let index = usize::try_from(index)
                .ok()
                .filter(|i| *i <= MAX_BUCKET)
                .ok_or(MalformedHistogram)?;
            self.add(index, n);
        }
        Ok(())
    }

    /// Like [`Self::add_encoded`] for the stored form in hexadecimal.
    pub fn add_hex(&mut self, hex: &str) -> Result<(), MalformedHistogram> {
        let digit = |c: u8| match c {
            b'0'..=b'9' => Ok(c - b'0'),
            b'a'..=b'f' => Ok(c - b'a' + 10),
            b'A'..=b'F' => Ok(c - b'A' + 10),
            _ => Err(MalformedHistogram),
        };
        let raw = hex.as_bytes();
        if !raw.len().is_multiple_of(2) {
            return Err(MalformedHistogram);
        }
        let mut bytes = Vec::with_capacity(raw.len() / 2);
        for pair in raw.chunks_exact(2) {
            bytes.push((digit(pair[0])? << 4) | digit(pair[1])?);
        }
        self.add_encoded(&bytes)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, MalformedHistogram> {
        let mut out = Self::default();
        out.add_encoded(bytes)?;
        Ok(out)
    }
}

fn put_varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn take_varint(bytes: &mut &[u8]) -> Result<u64, MalformedHistogram> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let (&byte, rest) = bytes.split_first().ok_or(MalformedHistogram)?;
        *bytes = rest;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(MalformedHistogram)
}

/// What analytics keeps of a set of executions (or spans): how many, how many failed, and their
/// durations (exact sum and maximum, histogram for percentiles).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LatencyStats {
    pub count: u64,
    pub failures: u64,
    /// Saturating sum of durations in nanoseconds.
    pub sum_ns: i64,
    pub max_ns: i64,
    pub histogram: LatencyHistogram,
}

impl LatencyStats {
    pub fn record(&mut self, duration_ns: i64, failed: bool) {
        let duration_ns = duration_ns.max(0);
        self.count += 1;
        self.failures += u64::from(failed);
        self.sum_ns = self.sum_ns.saturating_add(duration_ns);
        self.max_ns = self.max_ns.max(duration_ns);
        self.histogram.record(duration_ns);
    }

    pub fn merge(&mut self, other: &LatencyStats) {
        self.count += other.count;
        self.failures += other.failures;
        self.sum_ns = self.sum_ns.saturating_add(other.sum_ns);
        self.max_ns = self.max_ns.max(other.max_ns);
        self.histogram.merge(&other.histogram);
    }

    /// The nearest-rank quantile in milliseconds (0 when empty), never above the exact maximum.
    pub fn quantile_ms(&self, q: f64) -> f64 {
        self.histogram
            .quantile_ns(q)
            .map_or(0.0, |ns| ns.min(self.max_ns as f64) / 1e6)
    }

    pub fn max_ms(&self) -> f64 {
        self.max_ns as f64 / 1e6
    }

    pub fn mean_ms(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.sum_ns as f64 / self.count as f64 / 1e6
        }
    }

    /// Failures per execution (0 when empty).
    pub fn error_rate(&self) -> f64 {
        if self.count == 0 {
            0.0
        } else {
            self.failures as f64 / self.count as f64
        }
    }
}

/// The outcome group an execution is filtered and grouped by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StatusClass {
    /// HTTP 1xx (and anything below 200).
    Informational,
    Success,
    Redirection,
    ClientError,
    /// HTTP 5xx (and anything above).
    ServerError,
    GrpcOk,
    GrpcError,
    /// The target never answered (transport error).
    NoResponse,
}

impl StatusClass {
    pub const ALL: [StatusClass; 8] = [
        StatusClass::Informational,
        StatusClass::Success,
        StatusClass::Redirection,
        StatusClass::ClientError,
        StatusClass::ServerError,
        StatusClass::GrpcOk,
        StatusClass::GrpcError,
        StatusClass::NoResponse,
    ];

    pub fn of(protocol: Protocol, status_code: Option<i32>) -> StatusClass {
        match (protocol, status_code) {
            (_, None) => StatusClass::NoResponse,
            (Protocol::Grpc, Some(0)) => StatusClass::GrpcOk,
            (Protocol::Grpc, Some(_)) => StatusClass::GrpcError,
            (_, Some(code)) if code < 200 => StatusClass::Informational,
            (_, Some(code)) if code < 300 => StatusClass::Success,
            (_, Some(code)) if code < 400 => StatusClass::Redirection,
            (_, Some(code)) if code < 500 => StatusClass::ClientError,
            (_, Some(_)) => StatusClass::ServerError,
        }
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            StatusClass::Informational => "1xx",
            StatusClass::Success => "2xx",
            StatusClass::Redirection => "3xx",
            StatusClass::ClientError => "4xx",
            StatusClass::ServerError => "5xx",
            StatusClass::GrpcOk => "grpc_ok",
            StatusClass::GrpcError => "grpc_error",
            StatusClass::NoResponse => "no_response",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown status class {0:?}: expected 1xx, 2xx, 3xx, 4xx, 5xx, grpc_ok, grpc_error or no_response"
)]
pub struct UnknownStatusClass(pub String);

impl std::str::FromStr for StatusClass {
    type Err = UnknownStatusClass;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        StatusClass::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| UnknownStatusClass(s.to_owned()))
    }
}

/// The width of a rollup bucket. Buckets are aligned to the Unix epoch (days: UTC midnight).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Granularity {
    Minute,
    Hour,
    Day,
}

impl Granularity {
    /// Finest first.
    pub const ALL: [Granularity; 3] = [Granularity::Minute, Granularity::Hour, Granularity::Day];

    pub const fn seconds(self) -> i64 {
        match self {
            Granularity::Minute => 60,
            Granularity::Hour => 3_600,
            Granularity::Day => 86_400,
        }
    }

    pub const fn nanos(self) -> i64 {
        self.seconds() * 1_000_000_000
    }

    /// The stored code: the width in seconds.
    pub fn from_seconds(seconds: i64) -> Option<Granularity> {
        Granularity::ALL
            .into_iter()
            .find(|g| g.seconds() == seconds)
    }

    /// The start of the bucket containing `t`.
    pub fn floor(self, t: Timestamp) -> Timestamp {
        floor_to(t, self.nanos())
    }
}

/// `t` rounded down to a multiple of `step` nanoseconds (since the epoch).
pub fn floor_to(t: Timestamp, step: i64) -> Timestamp {
    Timestamp(t.nanos() - t.nanos().rem_euclid(step))
}

/// `t` rounded up to a multiple of `step` nanoseconds (saturating).
pub fn ceil_to(t: Timestamp, step: i64) -> Timestamp {
    let rem = t.nanos().rem_euclid(step);
    if rem == 0 {
        t
    } else {
        Timestamp(t.nanos().saturating_add(step - rem))
    }
}

/// The time-series step for a window of `length_ns`: minutes up to 2 h, hours up to 8 days,
/// days beyond — at most ~200 points, each answered from few rollup rows.
pub fn series_step(length_ns: i64) -> i64 {
    if length_ns <= 2 * Granularity::Hour.nanos() {
        Granularity::Minute.nanos()
    } else if length_ns <= 8 * Granularity::Day.nanos() {
        Granularity::Hour.nanos()
    } else {
        Granularity::Day.nanos()
    }
}

/// "The last `length_ns`" at `now`: `(from, to, step)`. The window ends with the current minute
/// and starts at the beginning of the series bucket `length_ns` ago, so every point of the series
/// but the last is a whole bucket, and the window is answered from whole rollup buckets at its
/// start (it is up to one step longer than asked).
pub fn last(now: Timestamp, length_ns: i64) -> (Timestamp, Timestamp, i64) {
    let step = series_step(length_ns);
    let to = ceil_to(now, Granularity::Minute.nanos());
    let to = if to == now {
        // A window ends after the minute that holds `now`.
        Timestamp(to.nanos().saturating_add(Granularity::Minute.nanos()))
    } else {
        to
    };
    let from = floor_to(Timestamp(to.nanos().saturating_sub(length_ns)), step);
    (from, to, step)
}

/// Rollup buckets of one granularity whose starts lie in `[from, to)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Piece {
    pub granularity: Granularity,
    pub from: Timestamp,
    pub to: Timestamp,
}

/// The fewest rollup buckets that exactly cover `[from, to)` (both minute-aligned), using
/// granularities up to `coarsest`: coarse buckets in the middle, finer ones at the edges — at
/// most 2 × 59 minutes and 2 × 23 hours besides the days.
pub fn cover(from: Timestamp, to: Timestamp, coarsest: Granularity) -> Vec<Piece> {
    let levels: Vec<Granularity> = Granularity::ALL
        .into_iter()
        .filter(|g| *g <= coarsest)
        .collect();
    let mut out = Vec::new();
    cover_with(from, to, &levels, &mut out);
    out.sort_by_key(|p| (p.from, p.granularity));
    out
}

fn cover_with(from: Timestamp, to: Timestamp, levels: &[Granularity], out: &mut Vec<Piece>) {
    if from >= to {
        return;
    }
    let Some((&g, finer)) = levels.split_last() else {
        return;
    };
    if finer.is_empty() {
        out.push(Piece {
            granularity: g,
            from: floor_to(from, g.nanos()),
            to: ceil_to(to, g.nanos()),
        });
        return;
    }
    let inner_from = ceil_to(from, g.nanos());
    let inner_to = floor_to(to, g.nanos());
    if inner_from < inner_to {
        cover_with(from, inner_from, finer, out);
        out.push(Piece {
            granularity: g,
            from: inner_from,
            to: inner_to,
        });
        cover_with(inner_to, to, finer, out);
    } else {
        cover_with(from, to, finer, out);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The exact nearest-rank quantile of sorted values.
    fn nearest_rank(sorted: &[i64], q: f64) -> i64 {
        let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
        sorted[rank - 1]
    }

    #[test]
    fn the_error_bound_constant_matches_the_growth() {
        let g = growth();
        assert!((g - 1.0) < 0.0201, "bounds grow by at most 2 %: {g}");
        let bound = (g - 1.0) / (g + 1.0);
        assert!(bound <= RELATIVE_ERROR && RELATIVE_ERROR - bound < 1e-6);
        const { assert!(RELATIVE_ERROR < 0.01) };
    }

    #[test]
    fn every_duration_is_within_the_bound_of_its_bucket_value() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..200_000 {
            let ns = (rng.random_range(3.0f64..15.0)).exp() as i64 + 1_001;
            let value = LatencyHistogram::representative_ns(LatencyHistogram::bucket_of(ns));
            let err = (value - ns as f64).abs() / ns as f64;
            assert!(err <= RELATIVE_ERROR, "{ns} ns → {value}: {err}");
        }
        // Bucket bounds exactly: 2 µs is the top of bucket 35, just above it is bucket 36.
        assert_eq!(LatencyHistogram::bucket_of(2_000), 35);
        assert_eq!(LatencyHistogram::bucket_of(2_001), 36);
        assert_eq!(LatencyHistogram::bucket_of(1_000), 0);
        assert_eq!(LatencyHistogram::bucket_of(-5), 0);
        assert!(LatencyHistogram::bucket_of(i64::MAX) <= MAX_BUCKET);
    }

    #[test]
    fn merged_percentiles_stay_within_the_bound_of_exact_nearest_rank() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        for round in 0..50 {
            let n = rng.random_range(1..5_000);
            // Log-normal-ish latencies from ~0.05 ms to minutes, split over several histograms.
            let values: Vec<i64> = (0..n)
                .map(|_| (rng.random_range(11.0f64..24.0)).exp() as i64)
                .collect();
            let mut parts = vec![LatencyStats::default(); 7];
            for (i, v) in values.iter().enumerate() {
                parts[(i * 31 + round) % 7].record(*v, false);
            }
            let mut merged = LatencyStats::default();
            for part in &parts {
                let stored = LatencyHistogram::decode(&part.histogram.encode()).unwrap();
                assert_eq!(stored, part.histogram);
                merged.merge(&LatencyStats {
                    histogram: stored,
                    ..part.clone()
                });
            }
            let mut sorted = values.clone();
            sorted.sort_unstable();
            assert_eq!(merged.count, n as u64);
            assert_eq!(merged.max_ns, *sorted.last().unwrap());
            for q in [0.5, 0.9, 0.95, 0.99, 1.0] {
                let exact = nearest_rank(&sorted, q) as f64 / 1e6;
                let got = merged.quantile_ms(q);
                let err = (got - exact).abs() / exact;
                assert!(err <= RELATIVE_ERROR, "q{q}: {got} vs {exact} ({err})");
            }
        }
    }

    #[test]
    fn histograms_encode_compactly_and_reject_garbage() {
        let mut h = LatencyHistogram::default();
        for ns in [5_000_000, 5_000_000, 80_000_000, 1_200, i64::MAX] {
            h.record(ns);
        }
        let bytes = h.encode();
        assert!(bytes.len() < 16, "{}", bytes.len());
        assert_eq!(LatencyHistogram::decode(&bytes).unwrap(), h);
        assert_eq!(LatencyHistogram::decode(&[0x80]), Err(MalformedHistogram));
        assert_eq!(
            LatencyHistogram::decode(&[0xff, 0xff, 0x7f, 1]),
            Err(MalformedHistogram)
        );
        assert!(LatencyHistogram::decode(&[]).unwrap().is_empty());
        // Concatenated stored forms (hex, as the databases aggregate them) are the sum.
        let mut other = LatencyHistogram::default();
        other.record(1_200);
        other.record(3);
        let hex: String = [h.encode(), other.encode()]
            .concat()
            .iter()
            .map(|b| format!("{b:02X}"))
            .collect();
        let mut sum = LatencyHistogram::default();
        sum.add_hex(&hex).unwrap();
        let mut expected = h.clone();
        expected.merge(&other);
        assert_eq!(sum, expected);
        assert_eq!(sum.count(), 7);
        assert_eq!(sum.add_hex("0"), Err(MalformedHistogram));
        assert_eq!(sum.add_hex("zz"), Err(MalformedHistogram));
    }

    #[test]
    fn doublings_are_exact_unions_of_buckets() {
        let mut h = LatencyHistogram::default();
        for ns in [1_500, 1_900, 3_000, 900_000_000] {
            h.record(ns);
        }
        let d = h.doublings();
        assert_eq!(d[0], (2_000.0, 2));
        assert_eq!(d[1], (4_000.0, 1));
        assert_eq!(d.iter().map(|x| x.1).sum::<u64>(), 4);
        assert_eq!(d.last().unwrap().1, 1);
        assert!(d.last().unwrap().0 >= 900_000_000.0);
    }

    #[test]
    fn status_classes_follow_protocols() {
        assert_eq!(
            StatusClass::of(Protocol::Rest, Some(204)),
            StatusClass::Success
        );
        assert_eq!(
            StatusClass::of(Protocol::Graphql, Some(502)),
            StatusClass::ServerError
        );
        assert_eq!(
            StatusClass::of(Protocol::Grpc, Some(0)),
            StatusClass::GrpcOk
        );
        assert_eq!(
            StatusClass::of(Protocol::Grpc, Some(14)),
            StatusClass::GrpcError
        );
        assert_eq!(
            StatusClass::of(Protocol::Rest, None),
            StatusClass::NoResponse
        );
        for c in StatusClass::ALL {
            assert_eq!(c.as_str().parse::<StatusClass>(), Ok(c));
        }
    }

    #[test]
    fn last_windows_start_on_a_series_bucket_and_include_now() {
        let now = Timestamp(1_700_000_000_123_456_789);
        for (length, step) in [
            (15 * 60_000_000_000, Granularity::Minute.nanos()),
            (Granularity::Day.nanos(), Granularity::Hour.nanos()),
            (30 * Granularity::Day.nanos(), Granularity::Day.nanos()),
        ] {
            let (from, to, got_step) = last(now, length);
            assert_eq!(got_step, step);
            assert!(from <= now && now < to, "{length}");
            assert_eq!(from.nanos() % step, 0);
            assert_eq!(to.nanos() % Granularity::Minute.nanos(), 0);
            assert!(to.nanos() - from.nanos() >= length);
            assert!(to.nanos() - from.nanos() < length + step + Granularity::Minute.nanos());
        }
        let on_the_minute = Timestamp(1_700_000_040_000_000_000);
        assert!(last(on_the_minute, 60_000_000_000).1 > on_the_minute);
    }

    #[test]
    fn windows_are_covered_exactly_by_coarse_middles_and_fine_edges() {
        let min = Granularity::Minute.nanos();
        let day = Granularity::Day.nanos();
        let from = Timestamp(10 * day + 7 * 3_600 * 1_000_000_000 + 13 * min);
        let to = Timestamp(from.nanos() + 30 * day + 5 * min);
        let pieces = cover(from, to, Granularity::Day);
        // Contiguous, aligned, exact.
        assert_eq!(pieces.first().unwrap().from, from);
        assert_eq!(pieces.last().unwrap().to, to);
        for pair in pieces.windows(2) {
            assert_eq!(pair[0].to, pair[1].from);
        }
        for p in &pieces {
            assert_eq!(p.from.nanos() % p.granularity.nanos(), 0);
            assert_eq!(p.to.nanos() % p.granularity.nanos(), 0);
        }
        let buckets: i64 = pieces
            .iter()
            .map(|p| (p.to.nanos() - p.from.nanos()) / p.granularity.nanos())
            .sum();
        assert_eq!(buckets, 47 + 16 + 29 + 7 + 18);
        // Capped at hours: no day pieces.
        assert!(
            cover(from, to, Granularity::Hour)
                .iter()
                .all(|p| p.granularity != Granularity::Day)
        );
        assert!(cover(to, from, Granularity::Day).is_empty());
    }
}
