#!/bin/sh
# echo-harness.sh: the smallest useful sandbox0d local harness, one turn at
# a time.
#
# A local session is a conversation in one workspace. sandbox0d runs the
# harness once per turn, in the same workspace every time, with that turn's
# events (user.message, system.message) as JSON lines on stdin,
# $SANDBOX0D_TURN (1, 2, ...), and the turn's first user text in
# $SANDBOX0D_PROMPT. Every line printed on stdout becomes a session event: a
# JSON object of an event type a harness may emit (agent.message,
# agent.thinking, ...) in that type's official shape is kept as is, any
# other line becomes an agent.message with that text.
# Exit 0 ends the turn (the session goes idle, end_turn, and waits for the
# next message); any other status terminates the session with a
# session.error. stderr is kept in a bounded log, not in the events.
#
# A harness keeps its own state in the workspace between turns: this one
# counts turns in .echo-harness-turns.
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
earlier=0
if [ -f .echo-harness-turns ]; then earlier=$(wc -l < .echo-harness-turns); fi

echo "session ${SANDBOX0D_SESSION_ID:-?} in $PWD"
echo "turn ${SANDBOX0D_TURN:-?}: received $events event(s), $user_messages user message(s); $((earlier)) earlier turn(s) here"
printf 'prompt: %s\n' "${SANDBOX0D_PROMPT:-}"
echo "workspace holds: $(ls -A | grep -v '^\.echo-harness-turns$' | tr '\n' ' ')"
echo '{"type":"agent.message","content":[{"type":"text","text":"echo-harness done"}]}'
echo "${SANDBOX0D_TURN:-?}" >> .echo-harness-turns
echo "echo-harness: finished" >&2
