// The page at GET /: asks the service (same origin) and shades the text by attention.
// No libraries and no build step; the colours match `attnserve predict`'s heatmaps: one hue,
// violet, that reads as no sentiment. Labels are the model's own, as GET /v1/models lists them.
"use strict";

const PALE = [242, 240, 247];
const DEEP = [84, 39, 143];
const FAINT = 0.02; // tokens under this share of the largest weight stay unshaded
const WHITE_TEXT_FROM = 0.65; // from this share on, white text reads better than black

const models = new Map(); // name -> the model's entry in GET /v1/models

const form = document.getElementById("ask");
const textInput = document.getElementById("text");
const modelSelect = document.getElementById("model");
const submitButton = document.getElementById("submit");
const statusLine = document.getElementById("status");
const result = document.getElementById("result");

function shade(relative) {
  const r = Math.min(Math.max(relative, 0), 1);
  return PALE.map((pale, i) => Math.round(pale + (DEEP[i] - pale) * r));
}

function rgb([r, g, b]) {
  return `rgb(${r}, ${g}, ${b})`;
}

function percent(fraction) {
  return `${(100 * fraction).toFixed(1)}%`;
}

function showStatus(message, isError) {
  statusLine.textContent = message;
  statusLine.classList.toggle("error", Boolean(isError));
}

async function errorMessage(response) {
  try {
    const body = await response.json();
    return body.error.message;
  } catch (_) {
    return `${response.status} ${response.statusText}`;
  }
}

async function loadModels() {
  const response = await fetch("v1/models");
  if (!response.ok) {
    showStatus(`Models unavailable: ${await errorMessage(response)}`, true);
    return;
  }
  const body = await response.json();
  for (const model of body.models) {
    models.set(model.name, model);
    const option = document.createElement("option");
    option.value = model.name;
    const accuracy = model.metrics.test_accuracy;
    option.textContent = accuracy === undefined ? `${model.name} v${model.version}` :
      `${model.name} v${model.version} · accuracy ${percent(accuracy)}`;
    option.selected = model.name === body.default_model;
    modelSelect.append(option);
  }
}

// How far to trust the shading: the model's test accuracy, and how much deleting its most
// attended words lowers its confidence against deleting random ones (AOPC, at export).
function modelNote(model) {
  const parts = [];
  const accuracy = model.metrics.test_accuracy;
  if (accuracy !== undefined) {
    parts.push(`${model.name}: accuracy ${percent(accuracy)} on its test split.`);
  }
  const aopc = model.faithfulness ? model.faithfulness.aopc : null;
  if (!model.has_attention) {
    parts.push("It has no attention: nothing is shaded.");
  } else if (!aopc || aopc.attention === undefined || !aopc.random) {
    parts.push("How faithful its attention is was not measured.");
  } else {
    const ratio = aopc.attention / aopc.random;
    parts.push(
      "Deleting the words it attends to most lowers its confidence by " +
      `${aopc.attention.toFixed(3)} on average, ${ratio.toFixed(1)}× as much as deleting ` +
      `random words (${aopc.random.toFixed(3)}): the shading shows what the model reads, ` +
      "not a proof of why it decided."
    );
  }
  return parts.join(" ");
}

function drawLegend() {
  document.querySelector("#legend .ramp").style.background =
    `linear-gradient(to right, ${rgb(PALE)}, ${rgb(DEEP)})`;
}

// The service's offsets count Unicode code points; JavaScript strings count UTF-16 units,
// so the text is cut as an array of code points.
function renderText(text, prediction) {
  const container = document.getElementById("highlighted");
  container.replaceChildren();
  const points = Array.from(text);
  const weights = prediction.tokens.map((t) => t.attention).filter((w) => w !== null);
  const largest = weights.length ? Math.max(...weights) : 0;
  let position = 0;
  for (const token of prediction.tokens) {
    if (token.start > position) {
      container.append(points.slice(position, token.start).join(""));
    }
    const span = document.createElement("span");
    span.className = "token";
    span.textContent = points.slice(token.start, token.end).join("");
    const weight = token.attention;
    span.dataset.attention = weight === null ? "none" : String(weight);
    span.title = weight === null ? "no attention" : `attention ${weight.toFixed(4)}`;
    const relative = weight !== null && largest > 0 ? weight / largest : null;
    if (relative !== null && relative >= FAINT) {
      span.style.backgroundColor = rgb(shade(relative));
      span.style.color = relative >= WHITE_TEXT_FROM ? "#fff" : "#000";
    }
    span.addEventListener("mouseenter", () => {
      document.getElementById("hovered").textContent =
        weight === null ? `${span.textContent}: no attention` :
          `${span.textContent}: attention ${weight.toFixed(4)}`;
    });
    container.append(span);
    position = token.end;
  }
  if (position < points.length) {
    container.append(points.slice(position).join(""));
  }
}

// In the order of the model's labels (from GET /v1/models), whatever their number and names.
function renderProbabilities(prediction, labels) {
  const body = document.querySelector("#probabilities tbody");
  body.replaceChildren();
  for (const label of labels) {
    const probability = prediction.probabilities[label];
    const row = body.insertRow();
    row.dataset.label = label;
    row.insertCell().textContent = label;
    row.insertCell().textContent = probability.toFixed(3);
    const bar = document.createElement("span");
    bar.className = "bar";
    bar.style.width = `${Math.round(probability * 200)}px`;
    row.insertCell().append(bar);
  }
}

function render(text, answer, timing) {
  const prediction = answer.predictions[0];
  document.getElementById("label").textContent =
    `${prediction.label} (${prediction.score.toFixed(3)})`;
  const model = models.get(answer.model);
  renderProbabilities(prediction, model ? model.labels : Object.keys(prediction.probabilities));
  renderText(text, prediction);
  document.getElementById("model-note").textContent = model ? modelNote(model) : "";
  const notes = [`${answer.model} v${answer.version}`];
  if (prediction.unreadable) {
    notes.push("unreadable: the model knew none of these words, so the label is a guess");
  } else if (prediction.readable < 1) {
    const share = Math.round(prediction.readable * 100);
    notes.push(`read ${share}% of the words: the model knew the others only as unknown`);
  }
  if (prediction.truncated) {
    notes.push("truncated: the model read only the shaded part");
  }
  if (timing) {
    // Server-Timing: "tokenize;dur=0.196, inference;dur=1.043, ..." -> "tokenize 0.20 ms, ..."
    const stages = timing.split(",").map((stage) => {
      const [name, duration] = stage.trim().split(";dur=");
      return `${name} ${Number(duration).toFixed(2)} ms`;
    });
    notes.push(`server time: ${stages.join(", ")}`);
  }
  document.getElementById("note").textContent = notes.join(" · ");
  result.hidden = false;
}

form.addEventListener("submit", async (event) => {
  event.preventDefault();
  const text = textInput.value;
  submitButton.disabled = true;
  showStatus("Classifying…");
  try {
    const response = await fetch(`v1/models/${encodeURIComponent(modelSelect.value)}/predict`, {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ text }),
    });
    if (!response.ok) {
      result.hidden = true;
      showStatus(await errorMessage(response), true);
      return;
    }
    render(text, await response.json(), response.headers.get("Server-Timing"));
    showStatus("");
  } catch (error) {
    showStatus(`The service did not answer: ${error.message}`, true);
  } finally {
    submitButton.disabled = false;
  }
});

// Ctrl+Enter (Cmd+Enter on a Mac) in the text submits, as in most text boxes that send.
textInput.addEventListener("keydown", (event) => {
  if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
    event.preventDefault();
    form.requestSubmit();
  }
});

drawLegend();
loadModels();
