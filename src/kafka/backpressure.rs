//! Back-pressure for producers. librdkafka refuses a record with
//! `QueueFull` while its queue of records awaiting acknowledgement is full;
//! the queue drains as the broker acknowledges, so the producer pauses and
//! offers the same record again. Every other refusal is final.

use futures_util::FutureExt;
use rdkafka::error::{KafkaError, RDKafkaErrorCode};
use std::future::Future;
use std::time::Duration;

/// The pause between two offers on a tokio worker: it yields to the
/// runtime, which runs the deliveries meanwhile.
const ASYNC_PAUSE: Duration = Duration::from_millis(5);

/// The pause between two offers on a thread of its own (`chiprisk
/// publish`): librdkafka's threads deliver meanwhile.
const BLOCKING_PAUSE: Duration = Duration::from_millis(1);

/// Offers `record` to `send` until librdkafka takes it, pausing with
/// `pause` while its queue is full. Returns what `send` returned once the
/// record is queued, or the first refusal other than a full queue.
pub async fn offer<R, T, P: Future<Output = ()>>(
    mut record: R,
    mut send: impl FnMut(R) -> Result<T, (KafkaError, R)>,
    mut pause: impl FnMut() -> P,
) -> Result<T, KafkaError> {
    loop {
        match send(record) {
            Ok(queued) => return Ok(queued),
            Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), back)) => {
                record = back;
                pause().await;
            }
            Err((e, _)) => return Err(e),
        }
    }
}

/// [`offer`] from a tokio task: the pause is a tokio sleep.
pub async fn offer_async<R, T>(record: R, send: impl FnMut(R) -> Result<T, (KafkaError, R)>) -> Result<T, KafkaError> {
    offer(record, send, || tokio::time::sleep(ASYNC_PAUSE)).await
}

/// [`offer`] from a thread that may block (never a tokio worker): the pause
/// sleeps the thread and is then ready, so the offer never waits for a
/// wake-up and completes within one poll.
pub fn offer_blocking<R, T>(record: R, send: impl FnMut(R) -> Result<T, (KafkaError, R)>) -> Result<T, KafkaError> {
    let pause = || {
        std::thread::sleep(BLOCKING_PAUSE);
        std::future::ready(())
    };
    offer(record, send, pause).now_or_never().expect("a blocking pause is always ready")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full<R>(record: R) -> Result<u32, (KafkaError, R)> {
        Err((KafkaError::MessageProduction(RDKafkaErrorCode::QueueFull), record))
    }

    #[test]
    fn a_record_refused_while_the_queue_is_full_is_offered_again_until_taken() {
        let mut offers = 0;
        let send = |record: &'static str| {
            offers += 1;
            if offers < 3 {
                full(record)
            } else {
                Ok(record.len() as u32)
            }
        };
        assert_eq!(offer_blocking("event", send).unwrap(), 5);
        assert_eq!(offers, 3);
    }

    #[test]
    fn any_other_refusal_is_returned_at_once() {
        let mut offers = 0;
        let send = |record: ()| {
            offers += 1;
            Err::<(), _>((KafkaError::MessageProduction(RDKafkaErrorCode::MessageSizeTooLarge), record))
        };
        let e = offer_blocking((), send).unwrap_err();
        assert_eq!(e.rdkafka_error_code(), Some(RDKafkaErrorCode::MessageSizeTooLarge));
        assert_eq!(offers, 1);
    }

    #[tokio::test]
    async fn from_a_task_the_offer_waits_without_blocking_the_runtime() {
        let mut offers = 0;
        let send = |record: u8| {
            offers += 1;
            if offers < 4 {
                full(record)
            } else {
                Ok(u32::from(record))
            }
        };
        // Another task on the same (current-thread) runtime counts while
        // the offer waits: a pause that blocked the thread would let it
        // count nothing until the offer is done.
        let ticks = std::cell::Cell::new(0u32);
        let ticker = async {
            loop {
                ticks.set(ticks.get() + 1);
                tokio::task::yield_now().await;
            }
        };
        let started = std::time::Instant::now();
        let sent = tokio::select! {
            biased;
            sent = offer_async(7u8, send) => sent,
            () = ticker => unreachable!("the ticker never ends"),
        };
        assert_eq!(sent.unwrap(), 7);
        assert!(ticks.get() > 0, "the runtime ran other tasks during the pauses");
        assert!(started.elapsed() >= ASYNC_PAUSE * 3, "a pause after each of three refusals");
    }
}
