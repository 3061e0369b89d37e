"""schemathesis hooks: a check that every non-public route refuses an anonymous caller."""
import schemathesis

PUBLIC = {"/health", "/api/openapi.json"}


@schemathesis.check
def only_401_outside_public(ctx, response, case):
    if case.path in PUBLIC:
        return None
    if response.status_code != 401:
        raise AssertionError(f"{case.method} {case.path} answered {response.status_code} "
                             "without a token")
    return None
