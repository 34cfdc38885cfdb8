//! A latency histogram that every connection records into without a lock:
//! one atomic counter per bucket, exported in Prometheus' histogram form.
//! (prometheus-client's own histogram takes a mutex per observation, which
//! every connection of the process would share for every frame it writes.)

use std::{
    sync::{
        atomic::{AtomicU64, Ordering},
        Arc,
    },
    time::Duration,
};

use prometheus_client::{
    encoding::{EncodeMetric, MetricEncoder, NoLabelSet},
    metrics::{MetricType, TypedMetric},
};

/// The upper bound of the first bucket.
const FIRST_BOUND: Duration = Duration::from_micros(50);
/// Buckets with a finite bound, each twice the one before: 50 µs to about
/// 1.6 s.
const BOUNDED: usize = 16;

/// Latencies, by bucket; cheap to clone (the clones are the same
/// histogram).
#[derive(Debug, Clone, Default)]
pub struct LatencyHistogram {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    /// Observations per bucket (not cumulative); the last one is `+Inf`.
    buckets: [AtomicU64; BOUNDED + 1],
    sum_nanos: AtomicU64,
}

/// The bucket of `latency`: the first whose bound it does not exceed.
fn bucket_of(latency: Duration) -> usize {
    let mut bound = FIRST_BOUND;
    for bucket in 0..BOUNDED {
        if latency <= bound {
            return bucket;
        }
        bound *= 2;
    }
    BOUNDED
}

impl LatencyHistogram {
    /// Records one latency.
    pub fn observe(&self, latency: Duration) {
        self.inner.buckets[bucket_of(latency)].fetch_add(1, Ordering::Relaxed);
        let nanos = u64::try_from(latency.as_nanos()).unwrap_or(u64::MAX);
        self.inner.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Each bucket's bound in seconds and its count (not cumulative), the
    /// last bound infinite; the sum in seconds; the count.
    fn snapshot(&self) -> (Vec<(f64, u64)>, f64, u64) {
        let buckets: Vec<(f64, u64)> = (0..=BOUNDED)
            .map(|bucket| {
                let bound = if bucket == BOUNDED {
                    f64::MAX
                } else {
                    (FIRST_BOUND * (1 << bucket)).as_secs_f64()
                };
                (bound, self.inner.buckets[bucket].load(Ordering::Relaxed))
            })
            .collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        let sum = Duration::from_nanos(self.inner.sum_nanos.load(Ordering::Relaxed));
        (buckets, sum.as_secs_f64(), count)
    }
}

impl TypedMetric for LatencyHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}

impl EncodeMetric for LatencyHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let (buckets, sum, count) = self.snapshot();
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_latency_counts_in_the_first_bucket_whose_bound_it_does_not_exceed() {
        let ms = Duration::from_millis;
        assert_eq!(bucket_of(Duration::ZERO), 0);
        assert_eq!(bucket_of(Duration::from_micros(50)), 0);
        assert_eq!(bucket_of(Duration::from_micros(51)), 1);
        assert_eq!(bucket_of(ms(1)), 5, "50 µs x 32 = 1.6 ms");
        assert_eq!(bucket_of(Duration::from_secs(60)), BOUNDED, "+Inf");

        let histogram = LatencyHistogram::default();
        for latency in [
            Duration::from_micros(10),
            ms(1),
            ms(1),
            Duration::from_secs(9),
        ] {
            histogram.clone().observe(latency);
        }
        let (buckets, sum, count) = histogram.snapshot();
        assert_eq!(count, 4);
        assert!((sum - 9.002_01).abs() < 1e-9, "{sum}");
        assert_eq!(buckets[0], (0.000_05, 1));
        assert_eq!(buckets[5].1, 2);
        assert_eq!(buckets[BOUNDED], (f64::MAX, 1));
    }
}
