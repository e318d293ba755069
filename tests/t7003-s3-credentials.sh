#!/bin/sh
# SPDX-License-Identifier: MIT
test_description='S3 client configuration: AWS_* variables, ~/.aws
credentials and config with AWS_PROFILE, a strict INI reader, and clear
errors for absent or wrong credentials that never show the secret'
. "$(dirname "$0")/lib.sh"
. "$SRC_DIRECTORY/tests/lib-rgw.sh"

# The rig's keys, then a clean slate: each test sets what it means.
KEY=$AWS_ACCESS_KEY_ID
SECRET=$AWS_SECRET_ACCESS_KEY
ENDPOINT=$AWS_ENDPOINT_URL
unset AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY AWS_REGION AWS_ENDPOINT_URL

s3() {
	ckpt-test-tool s3 "$@"
}

test_expect_success 'setup' '
	printf "x\n" >small
'

test_expect_success 'no credentials anywhere: exit 6, says where to put them' '
	test_expect_code 6 env AWS_ENDPOINT_URL=$ENDPOINT ckpt-test-tool s3 "$BUCKET" head k 2>err &&
	test_grep "no S3 credentials: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY" err
'

test_expect_success 'a wrong secret: exit 6 naming SignatureDoesNotMatch, secret not shown' '
	test_expect_code 6 env AWS_ENDPOINT_URL=$ENDPOINT AWS_ACCESS_KEY_ID=$KEY \
		AWS_SECRET_ACCESS_KEY=wrong-secret-1234567890 \
		ckpt-test-tool s3 "$BUCKET" put k small 2>err &&
	test_grep "s3://$BUCKET/k: PUT: HTTP 403 SignatureDoesNotMatch (wrong secret key?)" err &&
	! grep -e wrong-secret -e "$KEY" err
'

test_expect_success 'an unknown access key: exit 6 naming InvalidAccessKeyId' '
	test_expect_code 6 env AWS_ENDPOINT_URL=$ENDPOINT AWS_ACCESS_KEY_ID=NOSUCHKEY0000 \
		AWS_SECRET_ACCESS_KEY=$SECRET ckpt-test-tool s3 "$BUCKET" get k 2>err &&
	test_grep "GET: HTTP 403 InvalidAccessKeyId (unknown access key id)" err &&
	! grep -e "$SECRET" err
'

test_expect_success 'defaults: us-east-1 and AWS endpoint, virtual-host style' '
	s3 config >out &&
	cat >expect <<-\EOF &&
	endpoint https://s3.us-east-1.amazonaws.com
	region us-east-1
	path_style no
	access_key unset
	secret_key unset
	session_token unset
	EOF
	test_cmp expect out
'

test_expect_success 'AWS_REGION wins over AWS_DEFAULT_REGION; loopback is path-style' '
	AWS_DEFAULT_REGION=eu-west-1 AWS_REGION=eu-central-1 \
		AWS_ENDPOINT_URL=http://127.0.0.1:9 s3 config >out &&
	test_grep "^region eu-central-1$" out &&
	test_grep "^path_style yes$" out &&
	AWS_DEFAULT_REGION=eu-west-1 s3 config >out &&
	test_grep "^endpoint https://s3.eu-west-1.amazonaws.com$" out
'

test_expect_success 'the default profile of ~/.aws/credentials and ~/.aws/config works' '
	mkdir -p .aws &&
	cat >.aws/credentials <<-EOF &&
	# a comment
	[default]
	aws_access_key_id = $KEY
	aws_secret_access_key = $SECRET
	EOF
	cat >.aws/config <<-EOF &&
	[default]
	region = us-east-1
	endpoint_url = $ENDPOINT
	s3 =
	    addressing_style = path
	EOF
	s3 "$BUCKET" put cred/a small &&
	s3 "$BUCKET" get cred/a >got &&
	test_cmp small got
'

test_expect_success 'AWS_PROFILE selects [NAME] and [profile NAME]' '
	cat >>.aws/credentials <<-EOF &&
	[other]
	aws_access_key_id = NOSUCHKEY0000
	aws_secret_access_key = nope
	EOF
	cat >>.aws/config <<-EOF &&
	[profile other]
	region = eu-west-3
	endpoint_url = $ENDPOINT
	EOF
	AWS_PROFILE=other s3 config >out &&
	test_grep "^region eu-west-3$" out &&
	test_expect_code 6 env AWS_PROFILE=other ckpt-test-tool s3 "$BUCKET" head cred/a 2>err &&
	test_grep "HEAD: HTTP 403 (access denied: wrong credentials or no permission)" err &&
	test_expect_code 6 env AWS_PROFILE=other ckpt-test-tool s3 "$BUCKET" get cred/a 2>err &&
	test_grep InvalidAccessKeyId err
'

test_expect_success 'the environment wins over the files' '
	AWS_PROFILE=other AWS_ACCESS_KEY_ID=$KEY AWS_SECRET_ACCESS_KEY=$SECRET \
		s3 "$BUCKET" head cred/a
'

test_expect_success 'AWS_SHARED_CREDENTIALS_FILE and AWS_CONFIG_FILE move the files' '
	mv .aws elsewhere &&
	test_when_finished "mv elsewhere .aws" &&
	test_expect_code 6 s3 "$BUCKET" head cred/a &&
	AWS_SHARED_CREDENTIALS_FILE=elsewhere/credentials \
		AWS_CONFIG_FILE=elsewhere/config s3 "$BUCKET" head cred/a
'

test_expect_success 'a malformed credentials file: exit 3 naming file and byte offset' '
	printf "[default]\naws_access_key_id = A\nthis line is junk\n" >bad &&
	test_expect_code 3 env AWS_SHARED_CREDENTIALS_FILE=bad ckpt-test-tool s3 config 2>err &&
	test_grep "bad: line is not .key = value., a \[section\] or a comment (at byte 32)" err &&
	printf "aws_access_key_id = A\n" >bad2 &&
	test_expect_code 3 env AWS_SHARED_CREDENTIALS_FILE=bad2 ckpt-test-tool s3 config 2>err &&
	test_grep "setting before the first \[section\]" err &&
	printf "[default\n" >bad3 &&
	test_expect_code 3 env AWS_SHARED_CREDENTIALS_FILE=bad3 ckpt-test-tool s3 config 2>err &&
	test_grep "section header without" err
'

test_expect_success 'a bad addressing style is refused' '
	test_expect_code 3 env CKPT_S3_ADDRESSING_STYLE=sideways ckpt-test-tool s3 config 2>err &&
	test_grep "addressing style .sideways. is not path, virtual or auto" err
'

test_expect_success 'a session token is sent and signed, never shown' '
	AWS_SESSION_TOKEN=bogus-token s3 config >out &&
	test_grep "^session_token set$" out &&
	rgw_proxy_start ptok &&
	test_when_finished "rgw_proxy_stop ptok" &&
	AWS_ENDPOINT_URL=$PROXY_URL AWS_SESSION_TOKEN=bogus-token \
		ckpt-test-tool s3 "$BUCKET" head cred/a >out 2>err &&
	test_grep "x-amz-security-token" ptok.log.signed &&
	! grep bogus-token err out ptok.log ptok.log.signed
'

test_done
