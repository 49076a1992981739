//! A settlement a chain reorganisation undid and the re-mined transaction restored, as each
//! vendor dialect's callbacks see it, on SQLite and PostgreSQL. The events say both
//! settlements (under one `dedupe_key`, the second `restored`); Aurpay, Pay Protocol and Zaepe
//! have no "reversed" message, so their shops, told "paid" once, are called once
//! (docs/webhooks.md, "Once per fact"). A native order's `callback_url` gets every order event.

#![allow(clippy::unwrap_used, clippy::expect_used)] // tests fail loudly by design

use std::sync::Arc;

use coffer_core::EventType;
use coffer_dialect::{Dialect, DialectDeps};
use coffer_engine::Engine;
use coffer_testkit::{TestDb, both_backends, fixtures};
use coffer_webhooks::{Formatter, MasterKey, NativeFormatter, RetrySchedule};

fn formatters(engine: &Engine) -> Vec<(&'static str, Arc<dyn Formatter>)> {
    let deps = DialectDeps::new(engine.clone(), Arc::new(MasterKey::from_bytes([1; 32])));
    let dialects: [&dyn Dialect; 3] = [
        &coffer_dialect_aurpay::AurpayDialect,
        &coffer_dialect_payprotocol::PayProtocolDialect,
        &coffer_dialect_zaepe::ZaepeDialect,
    ];
    let mut all: Vec<(&'static str, Arc<dyn Formatter>)> = dialects
        .iter()
        .map(|d| (d.name(), d.formatter(&deps)))
        .collect();
    all.push((
        "native",
        Arc::new(NativeFormatter {
            retry: RetrySchedule::default_three_days(),
        }),
    ));
    all
}

async fn restored_settlement_is_called_back_once_by_vendor_dialects(db: &TestDb) {
    let engine = fixtures::bsc_shop_engine_now(db);
    for (dialect, formatter) in formatters(&engine) {
        let (order, events) = fixtures::settle_reorg_resettle(db, &engine, dialect).await;
        let settled = events
            .iter()
            .filter(|e| e.kind == EventType::OrderSettled && e.subject == order.id.as_str())
            .collect::<Vec<_>>();
        assert_eq!(settled.len(), 2, "{dialect}: settled, reversed, settled");
        assert_eq!(settled[0].dedupe_key(), settled[1].dedupe_key());
        // The dispatcher asks the formatter about the events whose subject is the order.
        let called: Vec<&str> = events
            .iter()
            .filter(|e| e.subject == order.id.as_str())
            .filter(|e| formatter.callback_url(e, &order).is_some())
            .map(|e| e.kind.as_str())
            .collect();
        let expected: &[&str] = if dialect == "native" {
            &[
                "order.created",
                "order.settled",
                "order.reversed",
                "order.settled",
            ]
        } else {
            &["order.settled"]
        };
        assert_eq!(called, expected, "{dialect}");
    }
}

both_backends! {
    restored_settlement_is_called_back_once => restored_settlement_is_called_back_once_by_vendor_dialects;
}
