"""The authorization server: our own clients, consent, Astravue's login behind it, our own tokens.

The SDK's handlers (``mcp.server.auth``) parse and check the OAuth requests (DCR, /authorize,
/token with PKCE, /revoke) and call this provider. What the provider adds:

- a redirect-URI policy for registration (https, loopback http, private-use schemes);
- /authorize stores a transaction and sends the browser to our consent page, not straight on;
- consent (CSRF token + a cookie binding the browser) then Astravue's login with PKCE;
- /oauth/callback exchanges Astravue's code with our confidential client, seals the person's
  Astravue tokens in the shared state and sends the browser back to the client with our code
  (and ``iss``, RFC 9207);
- our tokens: access tokens are JWTs we sign (key derived from the key ring), bound to the
  canonical ``/mcp`` URL (``aud``, RFC 8707), checked for issuer, audience, expiry and the
  revocation of their family; refresh tokens are opaque, stored as hashes, rotated on each use,
  and a reused one revokes its whole family.
"""

from __future__ import annotations

import hashlib
import json
import logging
import secrets
import time
from typing import Any
from urllib.parse import urlencode, urlsplit

import jwt
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    AuthorizeError,
    RefreshToken,
    RegistrationError,
    TokenError,
    construct_redirect_uri,
)
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import AnyUrl, BaseModel

from astravue_mcp.auth import oidc
from astravue_mcp.auth.login import pkce_pair
from astravue_mcp.auth.store import TokenSet
from astravue_mcp.config import Settings
from astravue_mcp.redact import register_secret
from astravue_mcp.remote.crypto import KeyRing
from astravue_mcp.remote.grants import Users, user_key
from astravue_mcp.remote.policy import redirect_uri_problem
from astravue_mcp.remote.state import State

log = logging.getLogger(__name__)

TRANSACTION_TTL = 600
CODE_TTL = 120
REFRESH_TTL = 30 * 86400
CLIENT_TTL = 90 * 86400
MAX_REDIRECT_URIS = 10
TOKEN_ALGORITHM = "HS256"
COOKIE = "astravue_binding"


def digest(value: str) -> str:
    return hashlib.sha256(value.encode()).hexdigest()


class Transaction(BaseModel):
    """One authorization in progress, between /authorize and our code (single use, short-lived)."""

    client_id: str
    client_name: str
    redirect_uri: str
    redirect_uri_provided_explicitly: bool
    state: str | None
    scopes: list[str]
    code_challenge: str
    resource: str
    csrf: str
    binding: str | None = None
    """sha256 of the browser-binding cookie, set when the consent page is shown."""
    upstream_verifier: str | None = None


class Code(AuthorizationCode):
    pass


class Refresh(RefreshToken):
    family: str
    hash: str


class Access(AccessToken):
    family: str


class AstravueAuthProvider:
    """``OAuthAuthorizationServerProvider`` over the shared state, with Astravue's Keycloak upstream."""

    def __init__(self, settings: Settings, state: State, ring: KeyRing, users: Users, *, access_ttl: int) -> None:
        assert settings.public_url
        self.settings = settings
        self.state, self.ring, self.users = state, ring, users
        self.issuer = settings.public_url.rstrip("/")
        self.resource = f"{self.issuer}/mcp"
        self.scopes = settings.remote_scopes.split()
        self.access_ttl = access_ttl
        self._signing_key = ring.derive("access-token")
        self.secure_cookies = urlsplit(self.issuer).scheme == "https"

    # ---------------------------------------------------------------- clients
    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        from astravue_mcp.remote import cimd  # deferred: only for a metadata-document client id

        raw = await self.state.get(f"client:{digest(client_id)}")
        if raw is not None:
            return OAuthClientInformationFull.model_validate_json(raw)
        if not cimd.is_document_url(client_id):
            return None
        try:
            client = await cimd.fetch_document(
                client_id, allow_private=self.settings.cimd_allow_private, transport=self.users.transport
            )
        except cimd.DocumentRefused as exc:
            log.warning("Refused client metadata document: %s", exc)
            return None
        # Cached (not registered): the document's owner may change it; we look again after a while.
        await self.state.set(f"client:{digest(client_id)}", client.model_dump_json().encode(), cimd.CACHE_SECONDS)
        return client

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        uris = [str(u) for u in client_info.redirect_uris or []]
        if len(uris) > MAX_REDIRECT_URIS:
            raise RegistrationError("invalid_redirect_uri", f"at most {MAX_REDIRECT_URIS} redirect URIs")
        for uri in uris:
            problem = redirect_uri_problem(uri)
            if problem:
                raise RegistrationError("invalid_redirect_uri", f"redirect URI refused: {problem}")
        if client_info.client_name and len(client_info.client_name) > 100:
            raise RegistrationError("invalid_client_metadata", "client_name is longer than 100 characters")
        await self.state.set(
            f"client:{digest(client_info.client_id)}", client_info.model_dump_json().encode(), CLIENT_TTL
        )
        log.info("Registered client %r (%s)", client_info.client_name or "unnamed", client_info.client_id)

    # ---------------------------------------------------------------- authorize -> consent
    async def authorize(self, client: OAuthClientInformationFull, params: AuthorizationParams) -> str:
        if params.resource is not None and params.resource.rstrip("/") != self.resource:
            raise AuthorizeError("invalid_target", f"this server only issues tokens for {self.resource}")
        txn_id = secrets.token_urlsafe(24)
        txn = Transaction(
            client_id=client.client_id,
            client_name=client.client_name or client.client_id,
            redirect_uri=str(params.redirect_uri),
            redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly,
            state=params.state,
            scopes=params.scopes or self.scopes,
            code_challenge=params.code_challenge,
            resource=self.resource,
            csrf=secrets.token_urlsafe(24),
        )
        await self.save_transaction(txn_id, txn)
        return f"{self.issuer}/consent?{urlencode({'txn': txn_id})}"

    async def save_transaction(self, txn_id: str, txn: Transaction) -> None:
        await self.state.set(f"txn:{digest(txn_id)}", txn.model_dump_json().encode(), TRANSACTION_TTL)

    async def transaction(self, txn_id: str, *, take: bool = False) -> Transaction | None:
        key = f"txn:{digest(txn_id)}"
        raw = await (self.state.take(key) if take else self.state.get(key))
        return Transaction.model_validate_json(raw) if raw else None

    def back_to_client(self, txn: Transaction, **params: str | None) -> str:
        """The client's redirect URI with our answer, its ``state`` and our ``iss`` (RFC 9207)."""
        return construct_redirect_uri(txn.redirect_uri, **params, state=txn.state, iss=self.issuer)

    def upstream_authorize_url(self, txn_id: str, challenge: str) -> str:
        query = {
            "response_type": "code",
            "client_id": self.settings.client_id,
            "redirect_uri": self.callback_url,
            "scope": self.settings.scopes,
            "state": txn_id,
            "code_challenge": challenge,
            "code_challenge_method": "S256",
        }
        return f"{self.settings.authorize_endpoint}?{urlencode(query)}"

    @property
    def callback_url(self) -> str:
        return f"{self.issuer}/oauth/callback"

    async def approve(self, txn_id: str, txn: Transaction) -> str:
        """Consent given: remember the PKCE verifier and send the browser to Astravue's login."""
        verifier, challenge = pkce_pair()
        register_secret(verifier)
        await self.save_transaction(txn_id, txn.model_copy(update={"upstream_verifier": verifier}))
        return self.upstream_authorize_url(txn_id, challenge)

    async def complete(self, txn: Transaction, code: str) -> str:
        """Astravue's code: exchange it here, keep the person's tokens, hand the client our code."""
        assert txn.upstream_verifier is not None
        register_secret(code)
        payload = await oidc.token_request(
            self.settings,
            {
                "grant_type": "authorization_code",
                "code": code,
                "redirect_uri": self.callback_url,
                "code_verifier": txn.upstream_verifier,
            },
            self.users.transport,
        )
        assert self.settings.client_id is not None
        tokens = TokenSet.from_response(payload, auth_url=self.settings.auth_url, client_id=self.settings.client_id)
        user = self.user_of(tokens)
        await self.users.grant(user).write(tokens)
        self.users.forget(user)  # a new login replaces whatever this process remembered
        await self.users.unchoose(user)
        ours = secrets.token_urlsafe(32)
        register_secret(ours)
        record = Code(
            code=ours,
            scopes=txn.scopes,
            expires_at=time.time() + CODE_TTL,
            client_id=txn.client_id,
            code_challenge=txn.code_challenge,
            redirect_uri=AnyUrl(txn.redirect_uri),
            redirect_uri_provided_explicitly=txn.redirect_uri_provided_explicitly,
            resource=txn.resource,
            subject=user,
        )
        await self.state.set(f"code:{digest(ours)}", record.model_dump_json().encode(), CODE_TTL)
        log.info("Signed in %s for client %s", tokens.claims.get("preferred_username") or "a user", txn.client_id)
        return self.back_to_client(txn, code=ours)

    @staticmethod
    def user_of(tokens: TokenSet) -> str:
        subject = tokens.claims.get("sub")
        if not subject:
            raise oidc.ProviderUnavailable("Astravue's answer does not say who signed in (no sub claim)")
        return f"{tokens.claims.get('iss') or tokens.auth_url}#{subject}"

    # ---------------------------------------------------------------- codes
    async def load_authorization_code(self, client: OAuthClientInformationFull, authorization_code: str) -> Code | None:
        # Taken, not read: a code is good for one attempt, right or wrong (a replay finds nothing).
        raw = await self.state.take(f"code:{digest(authorization_code)}")
        return Code.model_validate_json(raw) if raw else None

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: Code
    ) -> OAuthToken:
        assert authorization_code.subject is not None
        family = secrets.token_urlsafe(16)
        record = {"user": authorization_code.subject, "client_id": client.client_id}
        await self.state.set(f"family:{family}", json.dumps(record).encode(), REFRESH_TTL)
        return await self._issue(client.client_id, authorization_code.subject, authorization_code.scopes, family)

    async def _issue(self, client_id: str, user: str, scopes: list[str], family: str) -> OAuthToken:
        now = int(time.time())
        claims = {
            "iss": self.issuer,
            "aud": self.resource,
            "sub": user,
            "client_id": client_id,
            "scope": " ".join(scopes),
            "fam": family,
            "iat": now,
            "exp": now + self.access_ttl,
            "jti": secrets.token_urlsafe(12),
        }
        access = jwt.encode(claims, self._signing_key, algorithm=TOKEN_ALGORITHM, headers={"typ": "at+jwt"})
        refresh = secrets.token_urlsafe(32)
        register_secret(access)
        register_secret(refresh)
        record = Refresh(
            token="",
            client_id=client_id,
            scopes=scopes,
            expires_at=now + REFRESH_TTL,
            resource=self.resource,
            subject=user,
            family=family,
            hash=digest(refresh),
        )
        await self.state.set(f"refresh:{record.hash}", record.model_dump_json().encode(), REFRESH_TTL)
        return OAuthToken(
            access_token=access, expires_in=self.access_ttl, scope=" ".join(scopes), refresh_token=refresh
        )

    # ---------------------------------------------------------------- refresh tokens
    async def load_refresh_token(self, client: OAuthClientInformationFull, refresh_token: str) -> Refresh | None:
        raw = await self.state.get(f"refresh:{digest(refresh_token)}")
        if raw is None:
            return None
        record = Refresh.model_validate_json(raw).model_copy(update={"token": refresh_token})
        if await self.state.get(f"spent:{record.hash}") is not None:
            await self._reused(record)
            return None
        if await self.state.get(f"family:{record.family}") is None:
            return None  # revoked
        return record

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: Refresh, scopes: list[str]
    ) -> OAuthToken:
        # Spending is atomic: of two requests with the same token (on any replicas), one wins and
        # the other is a reuse, which revokes the family (RFC 9700 §4.14.2).
        if not await self.state.add(f"spent:{refresh_token.hash}", b"1", REFRESH_TTL):
            await self._reused(refresh_token)
            raise TokenError("invalid_grant", "refresh token was already used; sign in again")
        assert refresh_token.subject is not None
        return await self._issue(client.client_id, refresh_token.subject, scopes, refresh_token.family)

    async def _reused(self, record: Refresh) -> None:
        log.warning(
            "A rotated refresh token was presented again: revoking its whole family (client %s)", record.client_id
        )
        await self.state.delete(f"family:{record.family}")

    # ---------------------------------------------------------------- access tokens
    async def load_access_token(self, token: str) -> Access | None:
        try:
            claims = jwt.decode(
                token,
                self._signing_key,
                algorithms=[TOKEN_ALGORITHM],
                issuer=self.issuer,
                audience=self.resource,
                options={"require": ["exp", "iss", "aud", "sub", "fam"]},
            )
        except jwt.PyJWTError as exc:
            log.info("Refused a bearer token at /mcp: %s", exc)
            return None
        if await self.state.get(f"family:{claims['fam']}") is None:
            log.info("Refused a revoked bearer token at /mcp")
            return None
        return Access(
            token=token,
            client_id=str(claims.get("client_id", "")),
            scopes=str(claims.get("scope", "")).split(),
            expires_at=int(claims["exp"]),
            resource=str(claims["aud"]),
            subject=str(claims["sub"]),
            claims={"iss": claims["iss"]},
            family=str(claims["fam"]),
        )

    async def verify_token(self, token: str) -> Access | None:
        return await self.load_access_token(token)

    async def exchange_identity_assertion(self, client: OAuthClientInformationFull, params: Any) -> OAuthToken:
        raise TokenError("unsupported_grant_type", "this server accepts authorization codes and refresh tokens only")

    # ---------------------------------------------------------------- revocation
    async def revoke_token(self, token: Access | Refresh) -> None:
        """Sign the person out: our token family and their Astravue login (revoked upstream too)."""
        await self.state.delete(f"family:{token.family}")
        if token.subject is None:
            return
        grant = self.users.grant(token.subject)
        tokens = await grant.read()
        await grant.remove()
        self.users.forget(token.subject)
        if tokens is not None and tokens.refresh_token:
            try:
                await oidc.revoke_refresh_token(self.settings, tokens.refresh_token, self.users.transport)
            except (oidc.OAuthError, oidc.ProviderUnavailable, LookupError) as exc:
                log.warning("Could not revoke the Astravue login upstream (%s); it is deleted here", exc)
        log.info("Signed out user %s (client %s)", user_key(token.subject)[:8], token.client_id)
