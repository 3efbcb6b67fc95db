#!/usr/bin/env bash
# Commit generated/ back to the branch the pipeline ran for: once, without retriggering
# the pipeline, and safely when two runs race.
#
# Run by cloudbuild.yaml after `nox -s sync` succeeded, which means the registry was
# verified complete: nothing is committed otherwise (this step never runs).
#
#   BRANCH_NAME   the branch to push to (Cloud Build's substitution; default main)
#   COMMIT_SHA    the commit the build ran for (needed when the workspace has no .git)
#   REPO_URL      the repository to clone when the workspace has no .git
#   GIT_TOKEN     a token allowed to push (Secret Manager); unset: git's own credentials
#   PIPGATE_GIT_REMOTE  the remote of a workspace with .git (default origin)
#
# Races: another run may push first. Then this one fetches again and
#   - stops cleanly if a newer merge changed allowlist/: that merge's own run syncs and
#     commits, and files made from the older allowlist must not overwrite them;
#   - stops cleanly if the branch already holds exactly these generated files;
#   - otherwise puts its generated/ on top of the new head and pushes again (5 attempts,
#     with jitter).
set -euo pipefail

branch=${BRANCH_NAME:-main}
source_dir=$PWD

git_() {
    if [ -n "${GIT_TOKEN:-}" ]; then
        # The token reaches git through a helper that reads the environment: it is never
        # written into .git/config, a URL or the log.
        # shellcheck disable=SC2016
        git -c credential.helper= \
            -c credential.helper='!f() { echo username=x-access-token; echo "password=${GIT_TOKEN}"; }; f' \
            "$@"
    else
        git "$@"
    fi
}

saved=$(mktemp -d)
trap 'rm -rf "$saved"' EXIT
cp -a "$source_dir/generated" "$saved/generated"

if [ -d "$source_dir/.git" ]; then
    repo=$source_dir
    remote=${PIPGATE_GIT_REMOTE:-origin}
    synced=$(git -C "$repo" rev-parse HEAD)
else
    : "${REPO_URL:?the workspace has no .git: set REPO_URL (and COMMIT_SHA)}"
    : "${COMMIT_SHA:?the workspace has no .git: set COMMIT_SHA}"
    repo=$saved/repo
    git_ clone --quiet --branch "$branch" "$REPO_URL" "$repo"
    remote=origin
    synced=$COMMIT_SHA
fi
cd "$repo"
git config user.name >/dev/null || git config user.name "pipgate"
git config user.email >/dev/null || git config user.email "pipgate@localhost"
message="pipgate: generated files for $(git rev-parse --short "$synced") [skip ci]"

for attempt in 1 2 3 4 5; do
    git_ fetch --quiet "$remote" "$branch"
    head=$(git rev-parse FETCH_HEAD)
    if ! git diff --quiet "$synced" "$head" -- allowlist; then
        echo "commit-back: a newer merge changed allowlist/ ($head); its own run commits generated/"
        exit 0
    fi
    git reset --quiet --hard "$head"
    rm -rf generated
    cp -a "$saved/generated" generated
    git add --all generated
    if git diff --cached --quiet; then
        echo "commit-back: $branch already holds these generated files; nothing to commit"
        exit 0
    fi
    git commit --quiet -m "$message"
    if git_ push --quiet "$remote" "HEAD:refs/heads/$branch"; then
        echo "commit-back: pushed $(git rev-parse --short HEAD) to $branch"
        exit 0
    fi
    echo "commit-back: push refused (attempt $attempt): another run was first; trying again" >&2
    # Jitter: two runs refused at the same moment must not retry in step forever.
    sleep "$attempt.$((RANDOM % 10))"
done
echo "commit-back: could not push after 5 attempts; the next run will commit generated/" >&2
exit 1
