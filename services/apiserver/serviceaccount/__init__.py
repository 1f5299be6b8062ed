"""ServiceAccount tokens: signed JWTs (jwt.py), their claims (claims.py), the authenticator that checks them
against the live ServiceAccount and pod (authenticator.py), TokenRequest (tokenrequest.py) and the token volume
pods get at create (volume.py)."""
