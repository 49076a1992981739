-- A wallet (xpub or descriptor) belongs to one merchant per chain: two merchants with the
-- same key would be handed the same addresses and see each other's payments.
CREATE UNIQUE INDEX wallets_descriptor_unique ON wallets (chain, descriptor);
