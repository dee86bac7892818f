"""The README story's main calls through a client generated from aupd's
OpenAPI document (openapi-python-client). Run by .ci/api-client.sh with the
generated package on PYTHONPATH; exits non-zero at the first wrong answer."""

import json
import sys
import time

from aupd_client import AuthenticatedClient
from aupd_client.api.cases import act_on_case, get_case, list_cases
from aupd_client.api.sampling import get_prevalence, push_content
from aupd_client.api.tenant_portal import get_my_case, list_my_cases, submit_appeal
from aupd_client.api.tenants import create_tenant, get_tenant
from aupd_client.api.tokens import create_token, get_own_token
from aupd_client.models import (
    AppealOutcome,
    AppealRequest,
    CaseState,
    CreateTenantRequest,
    CreateTokenRequest,
    DecideAppealAction,
    DecideAppealActionAction,
    PushContentRequest,
    RiskTier,
    Severity,
)

base, admin_token, posts_path = sys.argv[1], sys.argv[2], sys.argv[3]
passed = 0


def check(what, res, status):
    global passed
    if res.status_code != status:
        print(f"FAIL {what}: answered {res.status_code}, wanted {status}: {res.content[:300]!r}")
        print(f"api client: {passed} passed, 1 failed")
        sys.exit(1)
    passed += 1
    print(f"ok   {what} → {res.status_code}")
    return res.parsed


def client(token):
    return AuthenticatedClient(base_url=base, token=token, raise_on_unexpected_status=True)


admin = client(admin_token)


def token(role, name):
    made = check(
        f"create a {role} token",
        create_token.sync_detailed(client=admin, body=CreateTokenRequest(role=role, name=name)),
        201,
    )
    return made.token


operator = client(token("operator", "olivia"))
approver = client(token("approver", "carol"))
service = client(token("service", "orchestrator"))
tenant = client(token("tenant:parlor", "parlor-dashboard"))

me = check("a token reads itself", get_own_token.sync_detailed(client=tenant), 200)
assert me.role == "tenant:parlor", me

check(
    "create the tenant",
    create_tenant.sync_detailed(
        client=operator,
        body=CreateTenantRequest(id="parlor", name="Parlor Social", risk_tier=RiskTier.ELEVATED),
    ),
    201,
)
got = check("read the tenant", get_tenant.sync_detailed("parlor", client=operator), 200)
assert got.risk_tier == RiskTier.ELEVATED, got

with open(posts_path) as f:
    posts = json.load(f)
outcome = check(
    "push the posts",
    push_content.sync_detailed("parlor", client=service, body=PushContentRequest.from_dict(posts)),
    200,
)
assert (outcome.received, outcome.flagged) == (100, 5), outcome

prevalence = check("read prevalence", get_prevalence.sync_detailed("parlor", client=operator), 200)
incitement = [c for c in prevalence.categories if c.category == "violent-incitement"][0]
assert incitement.threshold_crossed is True, incitement

case_id = None
for _ in range(200):
    page = check("list the tenant's cases", list_cases.sync_detailed(client=operator, tenant="parlor"), 200)
    if page.total == 1 and page.cases[0].state == CaseState.NOTICED:
        case_id = str(page.cases[0].id)
        break
    passed -= 1
    time.sleep(0.1)
assert case_id, "no case was opened for parlor"
case = check("read the case", get_case.sync_detailed(case_id, client=operator), 200)
assert case.severity == Severity.CRITICAL, case

mine = check("the tenant lists its cases", list_my_cases.sync_detailed(client=tenant), 200)
assert [str(c.id) for c in mine.cases] == [case_id], mine
view = check("the tenant reads its case", get_my_case.sync_detailed(case_id, client=tenant), 200)
assert view.state == CaseState.NOTICED and "reports" not in view.to_dict(), view
assert view.policy[0].aup and view.evidence, view
foreign = get_my_case.sync_detailed("00000000-0000-7000-8000-000000000000", client=tenant)
check("an unknown case is not found", foreign, 404)
assert foreign.parsed.code == "not_found", foreign.parsed

check(
    "the tenant appeals",
    submit_appeal.sync_detailed(
        case_id, client=tenant, body=AppealRequest(text="These posts quote a film script.")
    ),
    200,
)
decided = check(
    "an approver denies the appeal",
    act_on_case.sync_detailed(
        case_id,
        client=approver,
        body=DecideAppealAction(
            action=DecideAppealActionAction.DECIDE_APPEAL,
            outcome=AppealOutcome.DENIED,
            reason="not a film script",
        ),
    ),
    200,
)
assert decided.case.appeals[0].outcome == AppealOutcome.DENIED, decided
print(f"api client: {passed} passed, 0 failed")
