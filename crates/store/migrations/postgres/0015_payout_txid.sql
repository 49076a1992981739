-- The transaction that paid a payout request out, given by the merchant when marking it
-- sent or completed.
ALTER TABLE payout_requests ADD COLUMN txid TEXT;
