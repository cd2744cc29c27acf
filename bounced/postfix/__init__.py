"""Postfix's policy delegation protocol: `bounced policy-server` (SMTPD_POLICY_README).

`protocol` holds the pure parts (reading a request, choosing the action);
`server` the asyncio TCP server around them.
"""
