-- What a payment method keeps beside the common columns, as a JSON object (text): an order's
-- target (an invoice's payment hash, a contract's salt) and a payment (a preimage). Empty for
-- the address rails of today.
ALTER TABLE orders ADD COLUMN target_details TEXT NOT NULL DEFAULT '{}';
ALTER TABLE payments ADD COLUMN details TEXT NOT NULL DEFAULT '{}';
