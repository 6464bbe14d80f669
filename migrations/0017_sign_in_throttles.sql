-- Sign-in back-off per account counts an address's own failures on that account
-- (store/throttles.py login_failure_counts: WHERE username = ? AND client = ? AND created_ms >= ?).
CREATE INDEX login_failures_username_client ON login_failures (username, client, created_ms);

-- Sign-up attempts per client address, for the [server] sign_ups_per_address_per_hour limit
-- (store/throttles.py count_sign_up_attempts: WHERE client = ? AND created_ms >= ?).
CREATE TABLE sign_up_attempts (
    id INTEGER PRIMARY KEY,
    client TEXT NOT NULL,
    created_ms INTEGER NOT NULL
);
CREATE INDEX sign_up_attempts_client ON sign_up_attempts (client, created_ms);
