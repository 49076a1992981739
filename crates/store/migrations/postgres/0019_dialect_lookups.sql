-- What the dialects' manual callback re-sends and list filters look up.
--
-- Each delivery records what its event is about (the event's subject: an order, payout or
-- deposit id), so "the newest callback about X" is one indexed read instead of a search
-- through the bodies deliveries sent. Rows written before: their event's subject.
ALTER TABLE webhook_deliveries ADD COLUMN subject TEXT NOT NULL DEFAULT '';
UPDATE webhook_deliveries d SET subject = e.subject FROM events e WHERE e.id = d.event_id;
CREATE INDEX webhook_deliveries_subject
    ON webhook_deliveries (merchant_id, subject, created_at DESC) WHERE endpoint_id IS NULL;

-- A merchant's orders paid by one transaction (a list filter by transaction hash).
CREATE INDEX payments_merchant_txid ON payments (merchant_id, txid);
