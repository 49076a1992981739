-- A receiving address belongs to one order: the database refuses a second use, so an index
-- handed out twice (two instances racing) fails loudly and is retried with a fresh one.
CREATE UNIQUE INDEX orders_address_unique ON orders (address) WHERE address IS NOT NULL;
