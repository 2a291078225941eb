// The page at GET /: asks the service (same origin) and shades the text by attention.
// No libraries and no build step; the colours match `attnserve predict`'s heatmaps.
"use strict";

const PALE = [255, 236, 179];
const DEEP = [214, 48, 21];
const FAINT = 0.02; // tokens under this share of the largest weight stay unshaded

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
    const option = document.createElement("option");
    option.value = model.name;
    option.textContent = `${model.name} v${model.version} (${model.architecture})`;
    option.selected = model.name === body.default_model;
    modelSelect.append(option);
  }
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
      const [r, g, b] = shade(relative);
      span.style.backgroundColor = `rgb(${r}, ${g}, ${b})`;
      span.style.color = relative > 0.6 ? "#fff" : "#000";
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

function renderProbabilities(prediction) {
  const body = document.querySelector("#probabilities tbody");
  body.replaceChildren();
  for (const [label, probability] of Object.entries(prediction.probabilities)) {
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
  renderProbabilities(prediction);
  renderText(text, prediction);
  const notes = [`${answer.model} v${answer.version}`];
  if (prediction.tokens.every((t) => t.attention === null)) {
    notes.push("this model has no attention");
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

loadModels();
