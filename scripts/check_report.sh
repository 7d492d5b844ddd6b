#!/usr/bin/env bash
# Renders a run folder's report.html in real headless Chromium (Debian: apt-get install -y
# chromium) and checks that every image is visible: each <img> decoded (naturalWidth > 0) and
# laid out (non-zero box), each inline <svg> laid out, and no request left the page (the report
# must be self-contained). Also saves a screenshot beside the report (report-screenshot.png).
# Usage: scripts/check_report.sh RUN_FOLDER
set -euo pipefail
run=${1:?usage: scripts/check_report.sh RUN_FOLDER}
report="$run/report.html"
[ -s "$report" ] || { echo "check_report: $report missing or empty" >&2; exit 1; }
browser=$(command -v chromium || command -v chromium-browser || command -v google-chrome || true)
[ -n "$browser" ] || { echo "check_report: no chromium found (apt-get install -y chromium)" >&2; exit 1; }
if grep -Eq '(src|href)="(https?:|//|file:)' "$report"; then
  echo "check_report: $report refers to an external resource" >&2; exit 1
fi
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
# The report plus a script that writes the verdict into the DOM once everything has loaded.
sed 's#</body></html>##' "$report" > "$work/check.html"
cat >> "$work/check.html" <<'JS'
<script>
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const svgs = [...document.querySelectorAll('figure svg')];
  const bad = [];
  imgs.forEach((im, i) => { const r = im.getBoundingClientRect();
    if (!(im.complete && im.naturalWidth > 0 && r.width > 0 && r.height > 0)) bad.push('img ' + i + ' ' + im.alt); });
  svgs.forEach((s, i) => { const r = s.getBoundingClientRect();
    if (!(r.width > 0 && r.height > 0 && s.querySelectorAll('*').length > 3)) bad.push('svg ' + i); });
  const external = performance.getEntriesByType('resource').map(e => e.name).filter(n => !n.startsWith('data:'));
  external.forEach(n => bad.push('external request ' + n));
  const out = document.createElement('pre');
  out.id = 'check-result';
  out.textContent = 'CHECK images=' + imgs.length + ' svgs=' + svgs.length + ' failures=' + bad.length + (bad.length ? ': ' + bad.join('; ') : '');
  document.body.appendChild(out);
});
</script>
</body></html>
JS
flags=(--headless --no-sandbox --disable-gpu --disable-dev-shm-usage --allow-file-access-from-files --virtual-time-budget=10000)
"$browser" "${flags[@]}" --dump-dom "file://$(realpath "$work/check.html")" > "$work/dom.html" 2> "$work/stderr.txt" || true
"$browser" "${flags[@]}" --window-size=1200,3000 --screenshot="$(realpath "$run")/report-screenshot.png" "file://$(realpath "$report")" > /dev/null 2>&1 || true
result=$(grep -o 'id="check-result">CHECK images=[^<]*' "$work/dom.html" | sed 's/.*>//' || true)
if [ -z "$result" ]; then
  echo "check_report: chromium did not render the page" >&2; tail -5 "$work/stderr.txt" >&2; exit 1
fi
echo "check_report: $result"
case "$result" in
  *"images=0 "*) echo "check_report: no images in the report" >&2; exit 1 ;;
  *"failures=0") echo "check_report: every image visible; screenshot $run/report-screenshot.png" ;;
  *) exit 1 ;;
esac
