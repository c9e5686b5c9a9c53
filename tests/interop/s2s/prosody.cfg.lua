-- Prosody 0.12 for tests/interop_s2s.rs: one instance of the test's own,
-- in a temporary directory, on loopback ports. The test replaces the
-- @NAME@ placeholders. Nothing here is for production.

-- The test runs as root (it needs a mount namespace for resolv.conf);
-- a throwaway instance need not switch users.
run_as_root = true
pidfile = "@DIR@/prosody.pid"
data_path = "@DIR@/data"
-- Debug, so that a failing test can show what Prosody did.
log = { { levels = { min = "debug" }, to = "file", filename = "@DIR@/prosody.log" } }

-- Only the ports the test picked, only on loopback: no HTTP, no direct TLS.
interfaces = { "127.0.0.1" }
c2s_ports = { @C2S_PORT@ }
s2s_ports = { @S2S_PORT@ }
c2s_direct_tls_ports = { }
s2s_direct_tls_ports = { }
http_ports = { }
https_ports = { }
plugin_paths = { }

-- What the scenarios need (mod_posix, which checks run_as_root, and the
-- s2s, c2s and presence modules are always loaded).
modules_enabled = { "roster"; "saslauth"; "tls"; "dialback"; "disco" }

-- The test client logs in with SASL PLAIN over plaintext c2s.
c2s_require_encryption = false
allow_unencrypted_plain_auth = true
authentication = "internal_plain"
storage = "internal"

-- Federation must be encrypted (as Perch requires); the certificates on
-- both sides are self-signed, so servers prove their domains with
-- dialback (XEP-0220) instead of certificates.
s2s_require_encryption = true
s2s_secure_auth = false

-- A self-signed certificate for prosody.test and conference.prosody.test.
certificates = "@DIR@/certs"
ssl = {
	certificate = "@DIR@/certs/prosody.test.crt";
	key = "@DIR@/certs/prosody.test.key";
}

VirtualHost "prosody.test"

-- Rooms for scenario 3; Perch users join them over federation.
Component "conference.prosody.test" "muc"
