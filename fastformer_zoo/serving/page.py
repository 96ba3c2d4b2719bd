"""The demo page at ``GET /``: paste a text, see the predicted label and one bar per class.

Self-contained (inline style and script, no external scripts or fonts): it works with no internet.
"""

DEMO_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Fastformer text classification</title>
<style>
  body { font-family: system-ui, sans-serif; max-width: 46rem; margin: 2rem auto; padding: 0 1rem; color: #222; }
  textarea { width: 100%; min-height: 8rem; font: inherit; padding: .5rem; box-sizing: border-box; }
  button { margin-top: .5rem; padding: .4rem 1.2rem; font: inherit; }
  #result { margin-top: 1.2rem; }
  #label { font-size: 1.3rem; font-weight: 600; }
  .row { display: flex; align-items: center; margin: .25rem 0; }
  .name { width: 11rem; overflow: hidden; text-overflow: ellipsis; white-space: nowrap; }
  .track { flex: 1; background: #eee; height: 1.1rem; margin: 0 .6rem; }
  .bar { background: #3b75af; height: 100%; }
  .bar.best { background: #d1762a; }
  .value { width: 4rem; text-align: right; font-variant-numeric: tabular-nums; }
  .error { color: #b00020; }
  .note { color: #666; font-size: .9rem; }
</style>
</head>
<body>
<h1>Fastformer text classification</h1>
<p class="note" id="model">Loading the model description...</p>
<form id="form">
  <label for="text">Text</label>
  <textarea id="text" name="text" placeholder="Paste a review or any text the model was trained on"></textarea>
  <button type="submit" id="submit">Classify</button>
</form>
<div id="result" aria-live="polite"></div>
<script>
const result = document.getElementById("result");
fetch("metadata").then(r => r.json()).then(m => {
  document.getElementById("model").textContent =
    m.ready ? `${m.labels.length} labels, texts truncated at ${m.max_seq_len} tokens, ${m.backend} backend`
            : "The model is still loading.";
});
function show(prediction) {
  result.innerHTML = "";
  const label = document.createElement("div");
  label.id = "label";
  label.textContent = `${prediction.label} (${(100 * prediction.score).toFixed(1)}%)`;
  result.appendChild(label);
  if (prediction.truncated) {
    const note = document.createElement("p");
    note.className = "note";
    note.textContent = "The text was longer than the model reads; its end was cut off, as in training.";
    result.appendChild(note);
  }
  for (const [name, p] of Object.entries(prediction.probabilities)) {
    const row = document.createElement("div");
    row.className = "row";
    row.dataset.label = name;
    row.innerHTML = '<span class="name"></span><span class="track"><span class="bar"></span></span><span class="value"></span>';
    row.querySelector(".name").textContent = name;
    const bar = row.querySelector(".bar");
    bar.style.width = `${(100 * p).toFixed(1)}%`;
    bar.style.display = "block";
    if (name === prediction.label) bar.classList.add("best");
    row.querySelector(".value").textContent = `${(100 * p).toFixed(1)}%`;
    result.appendChild(row);
  }
}
document.getElementById("form").addEventListener("submit", async event => {
  event.preventDefault();
  const text = document.getElementById("text").value;
  result.textContent = "...";
  try {
    const response = await fetch("predict", {method: "POST", headers: {"Content-Type": "application/json"},
                                             body: JSON.stringify({texts: [text]})});
    const body = await response.json();
    if (!response.ok) {
      result.innerHTML = '<p class="error"></p>';
      result.firstChild.textContent = `${body.error.field}: ${body.error.message}`;
      return;
    }
    show(body.results[0]);
  } catch (error) {
    result.innerHTML = '<p class="error"></p>';
    result.firstChild.textContent = String(error);
  }
});
</script>
</body>
</html>
"""
