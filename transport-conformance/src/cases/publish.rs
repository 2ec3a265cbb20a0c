//! Publishing: confirms, mandatory returns, missing exchanges, concurrent publishers.

use std::sync::Arc;

use nameko_transport::{
    ConsumeOptions, ExchangeKind, PublishOptions, PublishOutcome, QueueOptions, Transport,
    TransportError,
};
use tokio::task::JoinSet;

use crate::runner::{CaseResult, Context as _, Cx, ensure};
use crate::support::{ack_all, consume, depth, ids, msg, publish_one, recv, recv_ids};

async fn publish_with(
    conn: &Arc<dyn Transport>,
    exchange: &str,
    key: &str,
    id: &str,
    options: PublishOptions,
) -> Result<PublishOutcome, String> {
    conn.publish(exchange, key, msg(id), options)
        .await
        .ctx(&format!("publishing {id} to {exchange:?} with key {key:?}"))
}

fn is_no_route(outcome: &PublishOutcome) -> bool {
    matches!(
        outcome,
        PublishOutcome::Returned { reply_code: 312, reply_text } if reply_text == "NO_ROUTE"
    )
}

/// A mandatory publish that no queue takes comes back as `Returned` (312 `NO_ROUTE`), from
/// an exchange without bindings and from the default exchange; a routable one is
/// confirmed and delivered.
pub(crate) async fn mandatory_unroutable_is_returned(cx: &Cx<'_>) -> CaseResult {
    let conn = cx.connect().await;
    let ex = cx.exchange(&conn, "topic", ExchangeKind::Topic).await?;
    let q = cx.queue(&conn, "q", QueueOptions::default()).await?;
    conn.bind_queue(&q, &ex, "routed.*").await.ctx("binding")?;
    let mandatory = PublishOptions::default().with_mandatory(true);

    let unbound = publish_with(&conn, &ex, "nobody.listens", "unbound", mandatory).await?;
    ensure!(
        is_no_route(&unbound),
        "mandatory publish with no matching binding: expected Returned 312 NO_ROUTE, got {unbound:?}"
    );
    let missing_queue =
        publish_with(&conn, "", &cx.name("no-such-queue"), "no-queue", mandatory).await?;
    ensure!(
        is_no_route(&missing_queue),
        "mandatory publish to the default exchange naming no queue: expected Returned 312 \
         NO_ROUTE, got {missing_queue:?}"
    );
    let routed = publish_with(&conn, &ex, "routed.ok", "routed", mandatory).await?;
    let expected = if cx.caps.publisher_confirms {
        PublishOutcome::Confirmed
    } else {
        PublishOutcome::Sent
    };
    ensure!(
        routed == expected,
        "routable mandatory publish: expected {expected:?}, got {routed:?}"
    );
    let unconfirmed = publish_with(
        &conn,
        &ex,
        "nobody.listens",
        "unbound-unconfirmed",
        mandatory.with_confirm(false),
    )
    .await?;
    ensure!(
        is_no_route(&unconfirmed),
        "mandatory unroutable publish without confirm: expected Returned, got {unconfirmed:?}"
    );
    let mut consumer = consume(&conn, &q, ConsumeOptions::default()).await?;
    let d = recv_ids(
        cx,
        &mut consumer,
        &["routed".to_owned()],
        "the routable message",
    )
    .await?;
    ack_all(d).await
}

/// With confirms the outcome is `Confirmed` (where the backend confirms), without them
/// `Sent`; both messages arrive.
pub(crate) async fn publish_confirm_outcomes(cx: &Cx<'_>) -> CaseResult {
    let conn = cx.connect().await;
    let q = cx.queue(&conn, "q", QueueOptions::default()).await?;
    let confirmed = publish_with(
        &conn,
        "",
        &q,
        "confirmed",
        PublishOptions::default().with_confirm(true),
    )
    .await?;
    let expected = if cx.caps.publisher_confirms {
        PublishOutcome::Confirmed
    } else {
        PublishOutcome::Sent
    };
    ensure!(
        confirmed == expected,
        "publish with confirm: expected {expected:?}, got {confirmed:?}"
    );
    let sent = publish_with(
        &conn,
        "",
        &q,
        "unconfirmed",
        PublishOptions::default().with_confirm(false),
    )
    .await?;
    ensure!(
        sent == PublishOutcome::Sent,
        "publish without confirm: expected Sent, got {sent:?}"
    );
    // Not mandatory and unroutable: silently dropped, not returned.
    let dropped = publish_with(
        &conn,
        "",
        &cx.name("no-such-queue"),
        "dropped",
        PublishOptions::default(),
    )
    .await?;
    ensure!(
        dropped == expected,
        "non-mandatory unroutable publish: expected {expected:?}, got {dropped:?}"
    );
    let mut consumer = consume(&conn, &q, ConsumeOptions::default()).await?;
    let got = recv_ids(
        cx,
        &mut consumer,
        &["confirmed".to_owned(), "unconfirmed".to_owned()],
        "both publishes",
    )
    .await?;
    ack_all(got).await
}

/// Publishing to a missing exchange fails with `NotFound`, and the transport (and a
/// consumer already running on it) keeps working afterwards.
pub(crate) async fn publish_to_missing_exchange_is_not_found(cx: &Cx<'_>) -> CaseResult {
    let conn = cx.connect().await;
    let q = cx.queue(&conn, "q", QueueOptions::default()).await?;
    let mut consumer = consume(&conn, &q, ConsumeOptions::default()).await?;
    let missing = cx.name("no-such-exchange");
    for confirm in [true, false] {
        match conn
            .publish(
                &missing,
                "key",
                msg("lost"),
                PublishOptions::default().with_confirm(confirm),
            )
            .await
        {
            Err(TransportError::NotFound(_)) => {}
            // Without confirms the broker's refusal may only surface on a later call;
            // the transport must still keep working, which is checked below.
            Ok(PublishOutcome::Sent) if !confirm => {}
            other => {
                return Err(format!(
                    "publish to a missing exchange (confirm={confirm}): expected NotFound, \
                     got {other:?}"
                ));
            }
        }
    }
    cx.harness.settle().await;
    publish_one(&conn, "", &q, "after-not-found").await?;
    let d = recv(
        cx,
        &mut consumer,
        "a consumer opened before the failed publish",
    )
    .await?;
    ensure!(
        d.properties().message_id.as_deref() == Some("after-not-found"),
        "expected after-not-found, got {:?}",
        d.properties().message_id
    );
    d.ack().await.ctx("acking")?;
    let q2 = cx.queue(&conn, "q2", QueueOptions::default()).await?;
    publish_one(&conn, "", &q2, "declared-after").await?;
    cx.harness.settle().await;
    let depth = depth(&conn, &q2).await?;
    ensure!(
        depth == 1,
        "a queue declared after the failure holds {depth} messages, expected 1"
    );
    Ok(())
}

/// Many tasks publishing at once over two connections lose nothing.
pub(crate) async fn concurrent_publishers_lose_nothing(cx: &Cx<'_>) -> CaseResult {
    let (tasks, per_task) = if cx.short { (4, 25) } else { (10, 100) };
    let conns = [cx.connect().await, cx.connect().await];
    let q = cx.queue(&conns[0], "q", QueueOptions::default()).await?;
    let mut consumer = consume(&conns[0], &q, ConsumeOptions::default()).await?;
    let mut expected = Vec::with_capacity(tasks * per_task);
    let mut set = JoinSet::new();
    for task in 0..tasks {
        let conn = Arc::clone(&conns[task % 2]);
        let queue = q.clone();
        let task_ids = ids(&format!("t{task}"), per_task);
        expected.extend(task_ids.iter().cloned());
        set.spawn(async move {
            for id in &task_ids {
                publish_one(&conn, "", &queue, id).await?;
            }
            Ok::<(), String>(())
        });
    }
    let got = recv_ids(cx, &mut consumer, &expected, "all published messages").await?;
    ack_all(got).await?;
    while let Some(joined) = set.join_next().await {
        joined.map_err(|e| format!("a publishing task failed: {e}"))??;
    }
    Ok(())
}
