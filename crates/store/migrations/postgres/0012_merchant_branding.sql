-- How a merchant's hosted checkout page looks: the name shown to buyers (default: the
-- merchant's name), a logo as a data: URL (served inline: the page loads nothing else) and a
-- brand colour (#rrggbb). One row per merchant, absent until set.
CREATE TABLE merchant_branding (
    merchant_id  TEXT NOT NULL PRIMARY KEY REFERENCES merchants(id),
    display_name TEXT,
    logo         TEXT,
    color        TEXT,
    updated_at   BIGINT NOT NULL
);
