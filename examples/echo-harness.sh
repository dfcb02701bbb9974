#!/bin/sh
# echo-harness.sh: the smallest useful sandbox0d local harness.
#
# sandbox0d runs a harness in the session's workspace with the deployment's
# initial events as JSON lines on stdin and the first user message's text in
# $SANDBOX0D_PROMPT. Every line printed on stdout becomes a session event: a
# JSON object with a known event type (agent.message, agent.thinking, ...)
# is kept as is, any other line becomes an agent.message with that text.
# Exit 0 ends the session idle (end_turn); any other status terminates it
# with a session.error. stderr is kept in a bounded log, not in the events.
#
# Only POSIX sh; no JSON tool is needed to read the input.
set -eu

events=0
user_messages=0
while IFS= read -r line; do
	events=$((events + 1))
	case $line in
	*'"type":"user.message"'*) user_messages=$((user_messages + 1)) ;;
	esac
done

echo "session ${SANDBOX0D_SESSION_ID:-?} in $PWD"
echo "received $events initial event(s), $user_messages user message(s)"
printf 'prompt: %s\n' "${SANDBOX0D_PROMPT:-}"
echo "workspace holds: $(ls -A | tr '\n' ' ')"
echo '{"type":"agent.message","content":[{"type":"text","text":"echo-harness done"}]}'
echo "echo-harness: finished" >&2
