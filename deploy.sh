#!/usr/bin/env bash
# Deploy the Lambda chaos toolkit into one AWS region as one CloudFormation stack: the chaos
# layer, both SSM Automation documents, the automation and FIS roles, the FIS experiment
# templates and their report bucket (and, with --with-sample-app, the blog's sample application
# with its customer simulator and dashboard in a second stack).
# Re-running updates in place. Rendering lives in cloudformation/render.py; this script only
# checks prerequisites, calls the AWS CLI and reports.
set -euo pipefail
shopt -s inherit_errexit  # a failing call inside $(...) stops the script too

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
LAYER_ZIP="$ROOT/dist/chaos-layer.zip"

usage() {
  cat <<'EOF'
Usage: ./deploy.sh [options]

Deploy the Lambda chaos toolkit (layer, SSM documents, roles, FIS experiment templates) into
one region as one CloudFormation stack. Re-running updates it in place.

Options:
  --region REGION        AWS region (default: $AWS_REGION, $AWS_DEFAULT_REGION, then the CLI's)
  --stack-name NAME      stack name (default: lambda-chaos); the sample app is NAME-sample-app
  --bucket BUCKET        S3 bucket for the packaged layer and templates
                         (default: lambda-chaos-ACCOUNT-REGION, created if missing)
  --with-sample-app      also deploy the sample application (API Gateway /health and /hello,
                         tagged functions, health check, alarm, customer simulator, dashboard)
                         and aim the templates (and their reports) at it
  --app-regions LIST     with --with-sample-app: every region the app runs in, comma-separated
                         (default: us-east-1,eu-west-1, and REGION); this region's dashboard
                         shows each one's clients and health check (from its stack's output)
  --domain-name NAME --hosted-zone-id ID --certificate-arn ARN
                         with --with-sample-app: the blog's latency-routed name for the API
                         (all three or none; the certificate of this region)
  --target-function NAME the function the single-function FIS template
                         (lambda-latency-single-function) targets: a name or ARN in REGION,
                         tagged chaos:opt-in=true (default with --with-sample-app: its /hello
                         function; without either, that template is skipped)
  --stop-alarm-arn ARN   CloudWatch alarm that stops the experiments (default: the sample
                         app's alarm, else a guard alarm on the account's Lambda errors)
  --trusted-layers LIST  comma-separated layer ARN patterns targeted functions already use
                         and may keep (any other layer makes the automation role refuse)
  --target-accounts LIST comma-separated 12-digit account ids an organisation run may target:
                         the three documents are shared with them in REGION, and the FIS
                         template lambda-organization-outage runs in them (without this
                         option that template is skipped)
  --target-regions LIST  comma-separated Regions of the organisation run and of that
                         template (default: REGION)
  --target-stack         deploy cloudformation/target-stack.yaml instead (the layer and the
                         execution role), run with the TARGET account's credentials, once per
                         Region; the stack is NAME-target
  --central-account ID   with --target-stack: the 12-digit account the toolkit stack is in
  --without-execution-role
                         with --target-stack: in a further Region of the same account (the
                         role is global: only one Region's stack creates it)
  --create-administration-role
                         central deploy: also create AWS-SystemsManager-AutomationAdministrationRole
                         (leave it out when the account has that role already)
  --dry-run              render everything under dist/deploy/ and print the AWS calls that
                         would be made; makes no AWS call
  --delete               delete the stack(s) this script created (the bucket is kept)
  --local                deploy into an embedded moto server (needs --endpoint-url); creates
                         by API what moto's CloudFormation cannot (layer, documents, alarms,
                         FIS templates)
  --endpoint-url URL     send every AWS call to URL (with --local)
  -h, --help             show this help
EOF
}

die() { echo "deploy.sh: $*" >&2; exit 1; }
say() { echo "==> $*" >&2; }
# An option that takes a value, given none (or another option in its place): one line with an
# example, not bash's "line N: 2: parameter null or not set".
needs_value() {  # needs_value OPTION EXAMPLE [NEXT-WORD]
  [[ $# -ge 3 && -n "$3" && "$3" != --* ]] || die "$1 needs a value, e.g. $1 $2"
}

DOMAIN="" ZONE="" CERT=""
REGION="" STACK="lambda-chaos" BUCKET="" WITH_APP=0 STOP_ALARM="" TRUSTED_LAYERS="" DRY_RUN=0 DELETE=0 LOCAL=0 ENDPOINT=""
TARGET_FUNCTION="" APP_REGIONS=""
TARGET_ACCOUNTS="" TARGET_REGIONS="" TARGET_STACK=0 CENTRAL_ACCOUNT="" CREATE_EXEC_ROLE=true CREATE_ADMIN_ROLE=false
while [[ $# -gt 0 ]]; do
  case "$1" in
    --region) needs_value "$1" us-east-1 "${@:2:1}"; REGION="$2"; shift 2 ;;
    --stack-name) needs_value "$1" lambda-chaos "${@:2:1}"; STACK="$2"; shift 2 ;;
    --bucket) needs_value "$1" my-deploy-bucket "${@:2:1}"; BUCKET="$2"; shift 2 ;;
    --with-sample-app) WITH_APP=1; shift ;;
    --app-regions) needs_value "$1" us-east-1,eu-west-1 "${@:2:1}"; APP_REGIONS="$2"; shift 2 ;;
    --target-function) needs_value "$1" my-function "${@:2:1}"; TARGET_FUNCTION="$2"; shift 2 ;;
    --stop-alarm-arn) needs_value "$1" arn:aws:cloudwatch:us-east-1:123456789012:alarm:my-slo "${@:2:1}"; STOP_ALARM="$2"; shift 2 ;;
    --domain-name) needs_value "$1" api.example.com "${@:2:1}"; DOMAIN="$2"; shift 2 ;;
    --hosted-zone-id) needs_value "$1" Z0123456789ABCDEFGHIJ "${@:2:1}"; ZONE="$2"; shift 2 ;;
    --certificate-arn) needs_value "$1" arn:aws:acm:us-east-1:123456789012:certificate/ID "${@:2:1}"; CERT="$2"; shift 2 ;;
    --trusted-layers) needs_value "$1" "'arn:aws:lambda:*:123456789012:layer:powertools:*'" "${@:2:1}"; TRUSTED_LAYERS="$2"; shift 2 ;;
    --target-accounts) needs_value "$1" 111111111111,222222222222 "${@:2:1}"; TARGET_ACCOUNTS="$2"; shift 2 ;;
    --target-regions) needs_value "$1" us-east-1,eu-west-1 "${@:2:1}"; TARGET_REGIONS="$2"; shift 2 ;;
    --target-stack) TARGET_STACK=1; shift ;;
    --central-account) needs_value "$1" 111111111111 "${@:2:1}"; CENTRAL_ACCOUNT="$2"; shift 2 ;;
    --without-execution-role) CREATE_EXEC_ROLE=false; shift ;;
    --create-administration-role) CREATE_ADMIN_ROLE=true; shift ;;
    --dry-run) DRY_RUN=1; shift ;;
    --delete) DELETE=1; shift ;;
    --local) LOCAL=1; shift ;;
    --endpoint-url) needs_value "$1" http://127.0.0.1:5000 "${@:2:1}"; ENDPOINT="$2"; shift 2 ;;
    -h|--help) usage; exit 0 ;;
    *) die "unknown option '$1'; run ./deploy.sh --help for the list" ;;
  esac
done
APP_STACK="$STACK-sample-app"
[[ "$STACK" =~ ^[A-Za-z][A-Za-z0-9-]{0,100}$ ]] \
  || die "stack name '$STACK' is invalid: use letters, digits and '-', starting with a letter (at most 101 characters)"
if [[ -n "$DOMAIN$ZONE$CERT" && ( -z "$DOMAIN" || -z "$ZONE" || -z "$CERT" || $WITH_APP -eq 0 ) ]]; then
  die "--domain-name, --hosted-zone-id and --certificate-arn go together, with --with-sample-app"
fi
# EventBridge rule names are at most 64 characters: the simulator's is <stack>-sample-app-simulator.
if [[ $WITH_APP -eq 1 && ${#APP_STACK} -gt 54 ]]; then
  die "stack name '$STACK' is too long for --with-sample-app: its simulator rule $APP_STACK-simulator would exceed EventBridge's 64 characters; use at most 43 characters"
fi
if [[ -n "$APP_REGIONS" && $WITH_APP -eq 0 ]]; then
  die "--app-regions goes with --with-sample-app (it lists the regions the sample app runs in)"
fi
# Organisation runs: every account id is 12 digits, and the target stack needs its central one.
IFS=, read -ra TARGET_ACCOUNT_LIST <<<"$TARGET_ACCOUNTS"
for account in "${TARGET_ACCOUNT_LIST[@]}"; do
  [[ "$account" =~ ^[0-9]{12}$ ]] \
    || die "--target-accounts: '$account' is not an AWS account id (12 digits, e.g. 111111111111); give the ids comma-separated, without spaces"
done
if [[ $TARGET_STACK -eq 1 ]]; then
  [[ -n "$CENTRAL_ACCOUNT" ]] || die "--target-stack needs --central-account ID: the 12-digit account the toolkit stack (and its documents) is in"
  [[ "$CENTRAL_ACCOUNT" =~ ^[0-9]{12}$ ]] \
    || die "--central-account '$CENTRAL_ACCOUNT' is not an AWS account id (12 digits, e.g. 111111111111)"
  [[ -z "$TARGET_ACCOUNTS$TARGET_REGIONS" && $WITH_APP -eq 0 && $LOCAL -eq 0 ]] \
    || die "--target-stack deploys only the target account's stack: leave out --target-accounts, --target-regions, --with-sample-app and --local (they belong to the central deploy)"
elif [[ -n "$CENTRAL_ACCOUNT" || "$CREATE_EXEC_ROLE" == false ]]; then
  die "--central-account and --without-execution-role go with --target-stack"
fi
if [[ -n "$TARGET_REGIONS" && -z "$TARGET_ACCOUNTS" ]]; then
  die "--target-regions goes with --target-accounts (the accounts the organisation run targets)"
fi
if [[ $LOCAL -eq 1 && -z "$ENDPOINT" ]]; then
  die "--local needs --endpoint-url URL of the moto server (e.g. http://127.0.0.1:5000)"
fi
# It goes into the template's documentParameters JSON and the automation's FunctionName: a
# name or an unqualified function ARN, as Lambda spells them.
[[ -z "$TARGET_FUNCTION" || "$TARGET_FUNCTION" =~ ^([A-Za-z0-9_-]{1,64}|arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:[A-Za-z0-9_-]{1,64})$ ]] \
  || die "--target-function '$TARGET_FUNCTION' is not a function name (1 to 64 letters, digits, - or _) or an unqualified function ARN (arn:aws:lambda:REGION:ACCOUNT:function:NAME)"

# --- prerequisites: each failure is one line with the fix -----------------------------------
if [[ -n "${AWS_CLI:-}" ]]; then :
elif command -v aws >/dev/null 2>&1; then AWS_CLI="aws"
elif [[ -x "$ROOT/.venv/bin/aws" ]]; then AWS_CLI="$ROOT/.venv/bin/aws"
else AWS_CLI="aws"; fi
command -v "$AWS_CLI" >/dev/null 2>&1 \
  || die "the AWS CLI is not installed: install it (https://aws.amazon.com/cli/) or run 'make test' once to get .venv/bin/aws"

if [[ -x "$ROOT/.venv/bin/python" ]]; then PYTHON="${PYTHON:-$ROOT/.venv/bin/python}"; else PYTHON="${PYTHON:-python3}"; fi
"$PYTHON" -c 'import yaml, botocore, regex' >/dev/null 2>&1 \
  || die "$PYTHON lacks PyYAML/botocore: run 'make test' once (creates .venv) or pip install -r requirements-dev.txt"
render() { PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" -m cloudformation.render "$@"; }

if [[ -z "$REGION" ]]; then REGION="${AWS_REGION:-${AWS_DEFAULT_REGION:-}}"; fi
if [[ -z "$REGION" && $DRY_RUN -eq 0 ]]; then REGION="$("$AWS_CLI" configure get region 2>/dev/null || true)"; fi
[[ -n "$REGION" ]] || die "no AWS region set: pass --region REGION or export AWS_REGION=REGION"
# Before anything is rendered or called: a made-up region would only fail later, on an endpoint
# that does not resolve.
if ! problem="$(render region "$REGION" 2>&1)"; then die "${problem#render region: }"; fi
# The app's regions: the blog's two unless given, and always this one; each one checked.
IFS=, read -ra APP_REGION_LIST <<<"${APP_REGIONS:-us-east-1,eu-west-1}"
[[ " ${APP_REGION_LIST[*]} " == *" $REGION "* ]] || APP_REGION_LIST=("$REGION" "${APP_REGION_LIST[@]}")
if [[ $WITH_APP -eq 1 ]]; then
  for app_region in "${APP_REGION_LIST[@]}"; do
    if ! problem="$(render region "$app_region" 2>&1)"; then die "--app-regions: ${problem#render region: }"; fi
  done
fi
APP_REGIONS="$(IFS=,; echo "${APP_REGION_LIST[*]}")"
IFS=, read -ra TARGET_REGION_LIST <<<"${TARGET_REGIONS:-$REGION}"
for target_region in "${TARGET_REGION_LIST[@]}"; do
  if ! problem="$(render region "$target_region" 2>&1)"; then die "--target-regions: ${problem#render region: }"; fi
done
# The organisation template's locations (stack parameters TargetAccounts, TargetRegions: none
# without --target-accounts, and then no such template).
ORG_ACCOUNTS="$TARGET_ACCOUNTS" ORG_REGIONS=""
[[ -n "$ORG_ACCOUNTS" ]] && ORG_REGIONS="$(IFS=,; echo "${TARGET_REGION_LIST[*]}")"
# What the target stacks are deployed with: stack.yaml's TargetLayerName and ExecutionRoleName
# defaults (tests/test_deploy.py checks they agree); the dry run's organisation request uses them.
TARGET_LAYER_NAME="lambda-chaos-layer" EXECUTION_ROLE_NAME="LambdaChaosAutomationExecution"
IFS=: read -r _ _ _ TARGET_REGION _ <<<"$TARGET_FUNCTION"
[[ "$TARGET_FUNCTION" != arn:* || "$TARGET_REGION" == "$REGION" ]] \
  || die "--target-function $TARGET_FUNCTION is in $TARGET_REGION, the stack in $REGION; the automation changes functions of its own region only: deploy with --region $TARGET_REGION"

AWS=("$AWS_CLI" --region "$REGION")
if [[ -n "$ENDPOINT" ]]; then AWS+=(--endpoint-url "$ENDPOINT"); fi
# An AWS call, or in --dry-run the line saying it would be made.
call() {
  if [[ $DRY_RUN -eq 1 ]]; then
    { printf 'would run: aws --region %s' "$REGION"; printf ' %q' "$@"; echo; } >&2
    return 0
  fi
  "${AWS[@]}" "$@"
}

OUT="$ROOT/dist/deploy/$STACK/$REGION"
mkdir -p "$OUT"
ACCOUNT="000000000000"   # --dry-run asks nobody: a stand-in account id in what it renders
if [[ $DRY_RUN -eq 0 ]]; then
  ACCOUNT="$("${AWS[@]}" sts get-caller-identity --query Account --output text 2>"$OUT/sts.err")" \
    || die "AWS credentials do not work ($(tail -n1 "$OUT/sts.err")): run 'aws configure' or export AWS_PROFILE"
fi
BUCKET="${BUCKET:-lambda-chaos-$ACCOUNT-$REGION}"
POLL=5; [[ $LOCAL -eq 1 ]] && POLL=0.2

# --- CloudFormation helpers ------------------------------------------------------------------
stack_exists() { [[ $DRY_RUN -eq 0 ]] && "${AWS[@]}" cloudformation describe-stacks --stack-name "$1" >/dev/null 2>&1; }

# Poll (CLI waiters poll every 30 s, far too slowly for the local emulator) until the stack
# settles; on failure show the first failed resource and its reason.
wait_stack() {  # wait_stack NAME [deleting]
  local name="$1" deleting="${2:-}" status reason
  while :; do
    # A stack that no longer exists is what a delete waits for (describe-stacks then fails).
    status="$("${AWS[@]}" cloudformation describe-stacks --stack-name "$name" --query 'Stacks[0].StackStatus' --output text 2>/dev/null || echo GONE)"
    case "$status" in *_IN_PROGRESS) sleep "$POLL" ;; *) break ;; esac
  done
  case "$status" in
    CREATE_COMPLETE|UPDATE_COMPLETE|DELETE_COMPLETE) say "$name: $status" ;;
    GONE) [[ -n "$deleting" ]] && say "$name: DELETE_COMPLETE" && return 0
          die "$name: the stack cannot be found after creating or updating it; check the CloudFormation console" ;;
    *) reason="$("${AWS[@]}" cloudformation describe-stack-events --stack-name "$name" \
          --query "StackEvents[?contains(ResourceStatus,'FAILED')]|[-1].[LogicalResourceId,ResourceStatusReason]" --output text 2>/dev/null || true)"
       if [[ "$status" == ROLLBACK_COMPLETE ]]; then
         die "$name: $status ($reason); delete it (./deploy.sh --delete) and deploy again"
       fi
       die "$name: $status ($reason)" ;;
  esac
}

# JSON parameter list for create/update-stack from KEY=VALUE words.
params_file() {
  local file="$1"; shift
  "$PYTHON" -c 'import json,sys; print(json.dumps([{"ParameterKey": k, "ParameterValue": v} for k, v in (a.split("=", 1) for a in sys.argv[1:])]))' "$@" >"$file"
}

# Package (upload local code) and create or update one stack from a rendered template.
deploy_stack() {
  local name="$1" template="$2"; shift 2
  local packaged="${template%.json}.packaged.json" key out
  params_file "$OUT/$name.parameters.json" "$@"
  # awscli v1's package ignores --endpoint-url for its uploads; it does honour the
  # service-specific AWS_ENDPOINT_URL_S3 (set only with --endpoint-url).
  AWS_ENDPOINT_URL_S3="${ENDPOINT:-${AWS_ENDPOINT_URL_S3:-}}" \
    call cloudformation package --template-file "$template" --s3-bucket "$BUCKET" --s3-prefix "$STACK" \
    --use-json --output-template-file "$packaged" >/dev/null
  # Through S3: the toolkit stack (it carries both documents) is larger than the 51,200 bytes
  # a template body may be.
  key="$STACK/templates/$(basename "$packaged")"
  call s3 cp --quiet "$packaged" "s3://$BUCKET/$key"
  local url="https://$BUCKET.s3.$REGION.amazonaws.com/$key"
  local common=(--stack-name "$name" --template-url "$url" --parameters "file://$OUT/$name.parameters.json" --capabilities CAPABILITY_NAMED_IAM)
  if stack_exists "$name"; then
    say "updating stack $name"
    if ! out="$(call cloudformation update-stack "${common[@]}" 2>&1)"; then
      [[ "$out" == *"No updates are to be performed"* ]] || die "$name: update refused: $out"
      say "$name: no changes"; return 0
    fi
  else
    say "creating stack $name"
    call cloudformation create-stack "${common[@]}" >/dev/null
  fi
  [[ $DRY_RUN -eq 1 ]] || wait_stack "$name"
}

output() {  # output STACK KEY -> value ("" when absent)
  [[ $DRY_RUN -eq 1 ]] && { echo "$1-$2-GENERATED"; return 0; }  # a name-shaped stand-in
  local value
  value="$("${AWS[@]}" cloudformation describe-stacks --stack-name "$1" --query "Stacks[0].Outputs[?OutputKey=='$2'].OutputValue" --output text)"
  [[ "$value" == None ]] && value=""
  echo "$value"
}

# Another region's output of a stack of the same name ("" when that stack does not exist yet).
peer_output() {  # peer_output REGION STACK KEY
  [[ $DRY_RUN -eq 1 ]] && { echo "$2-$1-$3-GENERATED"; return 0; }
  local peer=("$AWS_CLI" --region "$1") value
  if [[ -n "$ENDPOINT" ]]; then peer+=(--endpoint-url "$ENDPOINT"); fi
  value="$("${peer[@]}" cloudformation describe-stacks --stack-name "$2" --query "Stacks[0].Outputs[?OutputKey=='$3'].OutputValue" --output text 2>/dev/null || true)"
  [[ "$value" == None ]] && value=""
  echo "$value"
}

# The dashboard's view of the other regions: each one's health check id, from its app stack.
PEER_CHECKS=()
peer_health_checks() {
  local peer id seen=()
  for peer in "${APP_REGION_LIST[@]}"; do
    [[ "$peer" == "$REGION" ]] && continue
    id="$(peer_output "$peer" "$APP_STACK" HealthCheckId)"
    if [[ -n "$id" ]]; then
      PEER_CHECKS+=(--health-check "$peer=$id"); seen+=("$peer $id (stack $APP_STACK in $peer)")
    else
      say "no stack $APP_STACK in $peer yet: its health check is left off this region's dashboard (its clients' widgets stay); deploy there, then re-run here"
    fi
  done
  say "dashboard $APP_STACK-$REGION: app regions $APP_REGIONS; health checks: $REGION (this stack's)${seen[*]:+, ${seen[*]}}"
}

# A region deployed before this one could not see this region's health check: say which to re-run.
peer_dashboards_missing_this_check() {
  local id peer peer_cli body
  id="$(output "$APP_STACK" HealthCheckId)"
  [[ -n "$id" ]] || return 0
  for peer in "${APP_REGION_LIST[@]}"; do
    [[ "$peer" == "$REGION" ]] && continue
    peer_cli=("$AWS_CLI" --region "$peer"); [[ -n "$ENDPOINT" ]] && peer_cli+=(--endpoint-url "$ENDPOINT")
    body="$("${peer_cli[@]}" cloudwatch get-dashboard --dashboard-name "$APP_STACK-$peer" --query DashboardBody --output text 2>/dev/null || true)"
    if [[ -n "$body" && "$body" != *"$id"* ]]; then
      say "the dashboard $APP_STACK-$peer does not show $REGION's health check yet: re-run ./deploy.sh --with-sample-app --region $peer"
    fi
  done
}

ensure_bucket() {
  if [[ $DRY_RUN -eq 0 ]] && "${AWS[@]}" s3api head-bucket --bucket "$BUCKET" >/dev/null 2>&1; then return 0; fi
  say "creating bucket $BUCKET"
  if [[ "$REGION" == us-east-1 ]]; then call s3api create-bucket --bucket "$BUCKET" >/dev/null
  else call s3api create-bucket --bucket "$BUCKET" --create-bucket-configuration "LocationConstraint=$REGION" >/dev/null; fi
}

# --- what moto's CloudFormation cannot do, by API (--local) ----------------------------------
local_layer() {
  local key runtimes
  read -ra runtimes < <(render layer-runtimes)  # layer/settings.json, as the stack's layer lists
  key="$STACK/layers/chaos-layer-$("$PYTHON" -c 'import hashlib,sys; print(hashlib.sha256(open(sys.argv[1],"rb").read()).hexdigest()[:16])' "$LAYER_ZIP").zip"
  call s3 cp --quiet "$LAYER_ZIP" "s3://$BUCKET/$key"
  call lambda publish-layer-version --layer-name "$STACK-chaos-layer" --content "S3Bucket=$BUCKET,S3Key=$key" \
    --compatible-runtimes "${runtimes[@]}" --compatible-architectures x86_64 arm64 \
    --description "Lambda chaos toolkit fault-injection layer" --query LayerVersionArn --output text
}

local_document() {  # local_document NAME FILE
  local name="$1" file="$2" version out
  if [[ $DRY_RUN -eq 0 ]] && "${AWS[@]}" ssm describe-document --name "$name" >/dev/null 2>&1; then
    # shellcheck disable=SC2016  # '$LATEST' is SSM's literal version name
    if out="$(call ssm update-document --name "$name" --document-version '$LATEST' --document-format YAML \
         --content "file://$file" --query DocumentDescription.DocumentVersion --output text 2>&1)"; then
      version="$out"
      call ssm update-document-default-version --name "$name" --document-version "$version" >/dev/null
    else
      [[ "$out" == *DuplicateDocumentContent* ]] || die "SSM document $name: $out"
    fi
  else
    call ssm create-document --name "$name" --document-type Automation --document-format YAML \
      --content "file://$file" --attachments "Key=S3FileUrl,Name=$(basename "$ATTACHMENT_FILE"),Values=s3://$BUCKET/$ATTACHMENT_KEY" >/dev/null
  fi
  echo "arn:aws:ssm:$REGION:$ACCOUNT:document/$name"
}

names_file() {  # names_file STACK KEY=VALUE... -> JSON of pseudo parameters and parameters
  local name="$1"; shift
  "$PYTHON" -c 'import json,sys; print(json.dumps(dict(a.split("=", 1) for a in sys.argv[1:])))' \
    "AWS::StackName=$name" "AWS::Region=$REGION" "AWS::AccountId=$ACCOUNT" "AWS::Partition=aws" \
    "AWS::URLSuffix=amazonaws.com" "$@" >"$OUT/names-$name.json"
  echo "$OUT/names-$name.json"
}

# moto's CloudFormation drops Lambda Tags; the tag-targeted experiments need them.
local_function_tags() {  # local_function_tags TEMPLATE STACK
  local template="$1" name="$2" listing logical tags function
  listing="$(render function-tags --template "$template" --names "$(names_file "$name")")" \
    || die "could not read the functions' tags from $template (see above)"
  while read -r logical tags; do
    [[ -n "$logical" ]] || continue
    function="$("${AWS[@]}" cloudformation describe-stack-resource --stack-name "$name" \
      --logical-resource-id "$logical" --query StackResourceDetail.PhysicalResourceId --output text)"
    call lambda tag-resource --resource "arn:aws:lambda:$REGION:$ACCOUNT:function:$function" --tags "$tags"
  done <<<"$listing"
}

local_alarms() {  # local_alarms TEMPLATE STACK KEY=VALUE... -> ARN of the last alarm created
  local template="$1" name="$2"; shift 2
  local dir="$OUT/alarms-$name" arn=""
  rm -rf "$dir"
  render alarms --template "$template" --out-dir "$dir" --names "$(names_file "$name" "$@")" >/dev/null
  for input in "$dir"/*.json; do
    [[ -e "$input" ]] || continue
    call cloudwatch put-metric-alarm --cli-input-json "file://$input"
    arn="arn:aws:cloudwatch:$REGION:$ACCOUNT:alarm:$("$PYTHON" -c 'import json,sys; print(json.load(open(sys.argv[1]))["AlarmName"])' "$input")"
  done
  echo "$arn"
}

# moto's FIS can create and delete templates but not list or get them: keep their ids in an
# index next to the rendered requests, and replace them on every run.
delete_indexed_fis_templates() {
  local index="$OUT/fis-templates.json" id
  [[ -f "$index" ]] || return 0
  while read -r id; do
    call fis delete-experiment-template --id "$id" >/dev/null 2>&1 || true
  done < <("$PYTHON" -c 'import json,sys; [print(v["id"]) for v in json.load(open(sys.argv[1])).values()]' "$index")
  rm -f "$index"
}

local_fis_templates() {
  local index="$OUT/fis-templates.json" id lines=()
  delete_indexed_fis_templates
  for request in "$OUT"/fis/*.json; do
    [[ -e "$request" ]] || continue
    id="$(call fis create-experiment-template --cli-input-json "file://$request" --query experimentTemplate.id --output text)"
    lines+=("$(basename "$request" .json)=$id=$request")
    say "FIS template $(basename "$request" .json): $id"
  done
  "$PYTHON" -c 'import json,sys; print(json.dumps({n: {"id": i, "request": r} for n, i, r in (a.split("=", 2) for a in sys.argv[1:])}, indent=1))' "${lines[@]}" >"$index"
}

# Render and validate the FIS requests with the names the stack will give (role ARNs get a
# suffix from CloudFormation, shown as GENERATED): --dry-run shows them, a deploy checks them
# before it creates anything.
preview_fis() {  # preview_fis DIR TARGET_FUNCTION
  local dir="$1" target="$2" head="arn:aws:%s:$REGION:$ACCOUNT"
  rm -rf "$dir"
  # shellcheck disable=SC2059  # the format is ours: the ARN head with a service slot
  render fis --out-dir "$dir" \
    --set "FisRoleArn=arn:aws:iam::$ACCOUNT:role/$STACK-FisRole-GENERATED" \
    --set "AutomationRoleArn=arn:aws:iam::$ACCOUNT:role/$STACK-AutomationRole-GENERATED" \
    --set "FaultDocumentArn=$(printf "$head" ssm):document/${DOC_NAME[FaultDocument]}" \
    --set "ExperimentDocumentArn=$(printf "$head" ssm):document/${DOC_NAME[ExperimentDocument]}" \
    --set "LayerArn=$(printf "$head" lambda):layer:$STACK-chaos-layer:1" \
    --set "StopAlarmArn=${STOP_ALARM:-$(printf "$head" cloudwatch):alarm:$STACK-lambda-errors-guard}" \
    --set "LogGroupArn=$(printf "$head" logs):log-group:/aws/fis/$STACK:*" \
    --set "TargetFunctionName=$target" --set "TargetTagKey=chaos:target" \
    --set "TargetTagValue=sample-app" --set "ReportBucketName=$(report_bucket_stand_in)" \
    --set "DashboardArn=$APP_DASHBOARD" \
    --set "OrganizationDocumentArn=$(printf "$head" ssm):document/${DOC_NAME[OrganizationDocument]:-}" \
    --set "TargetAccounts=$ORG_ACCOUNTS" --set "TargetRegions=$ORG_REGIONS" \
    --set "TargetLayerName=$TARGET_LAYER_NAME" --set "ExecutionRoleName=$EXECUTION_ROLE_NAME" >/dev/null \
    || die "the rendered FIS requests did not validate (see above); fix fis_templates/ and re-run"
}

# CloudFormation names the bucket from the stack, in lower case, with a suffix of its own.
report_bucket_stand_in() { local name="${STACK,,}-reportbucket-generated"; echo "${name:0:63}"; }

# What the rendered FIS requests report: where to, over which windows, from which dashboard.
report_summary() {  # report_summary DIR
  "$PYTHON" - "$1" <<'PY' >&2
import json, pathlib, sys
for path in sorted(pathlib.Path(sys.argv[1]).glob("*.json")):
    report = json.loads(path.read_text())["experimentReportConfiguration"]
    s3 = report["outputs"]["s3Configuration"]
    boards = [d["dashboardIdentifier"] for d in report.get("dataSources", {}).get("cloudWatchDashboards", [])]
    print(f"==> FIS report {path.stem}: s3://{s3['bucketName']}/{s3['prefix']}/, pre "
          f"{report['preExperimentDuration']}, post {report['postExperimentDuration']}, dashboard "
          f"{', '.join(boards) or 'none (no --with-sample-app)'}")
PY
}

# The documents' names (with the attachment's short hash), their rendered contents and the
# attachment's file and S3 key (its hash in the key).
declare -A DOC_NAME=() DOC_FILE=()
ATTACHMENT_FILE="" ATTACHMENT_KEY=""
if [[ $TARGET_STACK -eq 0 ]]; then
  DOC_LINES="$(render documents --out-dir "$OUT/documents" --stack "$STACK" --region "$REGION" --account "$ACCOUNT")" \
    || die "could not render the SSM documents (see above)"
  while read -r key name file; do
    if [[ "$key" == attachment ]]; then ATTACHMENT_FILE="$name" ATTACHMENT_KEY="$file"
    else DOC_NAME[$key]="$name"; DOC_FILE[$key]="$file"; fi
  done <<<"$DOC_LINES"
fi

# --- delete ------------------------------------------------------------------------------------
if [[ $DELETE -eq 1 ]]; then
  DELETE_STACKS=("$STACK" "$APP_STACK"); [[ $TARGET_STACK -eq 1 ]] && DELETE_STACKS=("$STACK-target")
  for name in "${DELETE_STACKS[@]}"; do
    if [[ $DRY_RUN -eq 1 ]] || stack_exists "$name"; then
      say "deleting stack $name"
      call cloudformation delete-stack --stack-name "$name"
      [[ $DRY_RUN -eq 1 ]] || wait_stack "$name" deleting
    fi
  done
  if [[ $LOCAL -eq 1 ]]; then
    delete_indexed_fis_templates
    if [[ $DRY_RUN -eq 0 ]]; then
      for version in $("${AWS[@]}" lambda list-layer-versions --layer-name "$STACK-chaos-layer" \
                         --query 'LayerVersions[].Version' --output text 2>/dev/null || true); do
        call lambda delete-layer-version --layer-name "$STACK-chaos-layer" --version-number "$version"
      done
    fi
    call cloudwatch delete-alarms --alarm-names "$APP_STACK-hello-5xx" "$STACK-lambda-errors-guard" || true
    for name in "${DOC_NAME[@]}"; do
      call ssm delete-document --name "$name" >/dev/null 2>&1 || true
    done
  fi
  say "deleted; the bucket $BUCKET and the report bucket (output ReportBucketName) are kept (delete with: aws s3 rb s3://BUCKET --force)"
  exit 0
fi

# --- the target account's stack (--target-stack) ---------------------------------------------
if [[ $TARGET_STACK -eq 1 ]]; then
  TARGET_STACK_NAME="$STACK-target"
  if [[ $DRY_RUN -eq 1 ]]; then
    echo "would run: ./layer/build.sh" >&2
  else
    "$ROOT/layer/build.sh" >&2 || die "layer/build.sh failed (see above); fix it and re-run"
  fi
  ensure_bucket
  render target-stack --out "$OUT/target-stack.json" --layer-zip "$LAYER_ZIP" >/dev/null
  deploy_stack "$TARGET_STACK_NAME" "$OUT/target-stack.json" "CentralAccountId=$CENTRAL_ACCOUNT" \
    "CreateExecutionRole=$CREATE_EXEC_ROLE" "TrustedLayerArns=$TRUSTED_LAYERS"
  say "target stack $TARGET_STACK_NAME in $REGION: layer lambda-chaos-layer, execution role LambdaChaosAutomationExecution (trusted by $CENTRAL_ACCOUNT's AWS-SystemsManager-AutomationAdministrationRole)"
  exit 0
fi

# --- deploy ------------------------------------------------------------------------------------
LOCAL_FLAG=(); [[ $LOCAL -eq 1 ]] && LOCAL_FLAG=(--local)
# The reports' data source: the sample app's dashboard (its name is known before it exists).
APP_DASHBOARD=""
[[ $WITH_APP -eq 1 ]] && APP_DASHBOARD="arn:aws:cloudwatch::$ACCOUNT:dashboard/$APP_STACK-$REGION"
if [[ $DRY_RUN -eq 1 ]]; then
  echo "would run: ./layer/build.sh" >&2
else
  [[ -x "$ROOT/layer/build.sh" ]] || die "layer/build.sh is missing or not executable: pull the layer work (issue 3), or build dist/chaos-layer.zip yourself"
  say "building the layer"
  "$ROOT/layer/build.sh" >&2 || die "layer/build.sh failed (see above); fix it and re-run"
  [[ -f "$LAYER_ZIP" ]] || die "layer/build.sh did not write $LAYER_ZIP"
fi
if [[ -z "$TARGET_FUNCTION" && $WITH_APP -eq 0 ]]; then
  say "skipping the FIS template lambda-latency-single-function: it targets one function and none was named; pass --target-function NAME (an opted-in function, tag chaos:opt-in=true) or --with-sample-app (its /hello function)"
fi
if [[ -z "$ORG_ACCOUNTS" ]]; then
  say "skipping the FIS template lambda-organization-outage: it runs in target accounts and none were named; pass --target-accounts A,B (and --target-regions R,R; each account needs the target stack: ./deploy.sh --target-stack)"
else
  say "FIS template lambda-organization-outage: every tagged function in accounts $ORG_ACCOUNTS, Regions $ORG_REGIONS (layer $TARGET_LAYER_NAME, execution role $EXECUTION_ROLE_NAME)"
fi
if [[ $DRY_RUN -eq 0 ]]; then
  say "checking the FIS templates before creating anything"
  PREVIEW_TARGET="$TARGET_FUNCTION"
  [[ -z "$PREVIEW_TARGET" && $WITH_APP -eq 1 ]] && PREVIEW_TARGET="$APP_STACK-HelloFunction-GENERATED"
  preview_fis "$OUT/fis-preview" "$PREVIEW_TARGET"
fi
ensure_bucket

if [[ $WITH_APP -eq 1 ]]; then
  peer_health_checks
  APP_RENDER=(--code-dir "$OUT/sample-app-code" --region "$REGION" --app-regions "$APP_REGIONS" "${PEER_CHECKS[@]}")
  render sample-app --out "$OUT/sample-app.json" "${APP_RENDER[@]}" "${LOCAL_FLAG[@]}" >/dev/null
  deploy_stack "$APP_STACK" "$OUT/sample-app.json" "DomainName=$DOMAIN" "HostedZoneId=$ZONE" "CertificateArn=$CERT"
  say "customer simulator: $APP_STACK's SimulatorFunction (sample_app/simulator.py), started every minute by the EventBridge rule $APP_STACK-simulator, DISABLED until: aws events enable-rule --region $REGION --name $APP_STACK-simulator (disable-rule to stop; cost per hour: sample_app/README.md)"
  if [[ $LOCAL -eq 1 ]]; then
    render sample-app --out "$OUT/sample-app.full.json" "${APP_RENDER[@]}" >/dev/null
    APP_ALARM="$(local_alarms "$OUT/sample-app.full.json" "$APP_STACK")"
    [[ $DRY_RUN -eq 1 ]] || local_function_tags "$OUT/sample-app.full.json" "$APP_STACK"
  else
    APP_ALARM="$(output "$APP_STACK" SampleAppAlarmArn)"
  fi
  STOP_ALARM="${STOP_ALARM:-$APP_ALARM}"
  TARGET_FUNCTION="${TARGET_FUNCTION:-$(output "$APP_STACK" HelloFunctionName)}"
  [[ $DRY_RUN -eq 1 ]] || { APP_DASHBOARD="$(output "$APP_STACK" DashboardArn)"; peer_dashboards_missing_this_check; }
fi

render stack --out "$OUT/stack.json" --layer-zip "$LAYER_ZIP" "${LOCAL_FLAG[@]}" >/dev/null
# The attachment goes up under its hash before the stack creates documents that read it.
call s3 cp --quiet "$ATTACHMENT_FILE" "s3://$BUCKET/$ATTACHMENT_KEY"
STACK_PARAMS=("StopAlarmArn=$STOP_ALARM" "TargetFunctionName=$TARGET_FUNCTION" "TrustedLayerArns=$TRUSTED_LAYERS" "DashboardArn=$APP_DASHBOARD" "DeployBucket=$BUCKET" "CreateAdministrationRole=$CREATE_ADMIN_ROLE" "TargetAccounts=$ORG_ACCOUNTS" "TargetRegions=$ORG_REGIONS")
deploy_stack "$STACK" "$OUT/stack.json" "${STACK_PARAMS[@]}"
SETS=()
if [[ $LOCAL -eq 1 ]]; then
  say "creating by API what moto's CloudFormation cannot: layer, documents, alarm, FIS templates"
  SETS+=("LayerArn=$(local_layer)")
  for key in "${!DOC_NAME[@]}"; do
    SETS+=("${key}Arn=$(local_document "${DOC_NAME[$key]}" "${DOC_FILE[$key]}")")
  done
  if [[ -z "$STOP_ALARM" ]]; then
    STOP_ALARM="$(local_alarms "$(render stack --out "$OUT/stack.full.json" --layer-zip "$LAYER_ZIP")" "$STACK" "${STACK_PARAMS[@]}")"
  fi
  SETS+=("StopAlarmArn=$STOP_ALARM")
fi

# A custom runbook runs in other accounts only when shared with them: once the documents exist
# (the stack's, or with --local the ones just created by API).
if [[ ${#TARGET_ACCOUNT_LIST[@]} -gt 0 ]]; then
  for key in "${!DOC_NAME[@]}"; do
    say "sharing ${DOC_NAME[$key]} in $REGION with ${TARGET_ACCOUNT_LIST[*]}"
    call ssm modify-document-permission --name "${DOC_NAME[$key]}" --permission-type Share \
      --account-ids-to-add "${TARGET_ACCOUNT_LIST[@]}"
  done
  say "organisation run: deploy the target stack in each of ${TARGET_ACCOUNT_LIST[*]} and each Region of ${TARGET_REGION_LIST[*]}: ./deploy.sh --target-stack --central-account $ACCOUNT --region R (with that account's credentials; --without-execution-role after its first Region)"
fi

if [[ $DRY_RUN -eq 1 ]]; then
  preview_fis "$OUT/fis" "$TARGET_FUNCTION"
  say "FIS requests (validated): $(cd "$OUT" && echo fis/*.json)"
  report_summary "$OUT/fis"
  say "dry run: nothing was called; everything rendered is under $OUT (account shown as $ACCOUNT)"
  exit 0
fi
"${AWS[@]}" cloudformation describe-stacks --stack-name "$STACK" --query 'Stacks[0].Outputs' --output json >"$OUT/outputs.json"
rm -rf "$OUT/fis"
render fis --out-dir "$OUT/fis" --outputs "$OUT/outputs.json" --set "TargetFunctionName=$TARGET_FUNCTION" \
  --set "DashboardArn=$APP_DASHBOARD" "${SETS[@]/#/--set=}" >/dev/null \
  || die "the rendered FIS requests did not validate (see above); fix fis_templates/ and re-run"
report_summary "$OUT/fis"
[[ $LOCAL -eq 1 ]] && local_fis_templates

say "done: stack $STACK in $REGION"
"${AWS[@]}" cloudformation describe-stacks --stack-name "$STACK" --query 'Stacks[0].Outputs[].[OutputKey,OutputValue]' --output text
if [[ $LOCAL -eq 1 ]]; then echo "FIS templates (local): $OUT/fis-templates.json"; fi
