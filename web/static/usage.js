// Harbormaster dashboard: the usage panel, drawn from the summary's "usage" (no request of
// its own). For each hour of the last day, two stacked bar charts: the billable CPU
// core-hours and memory GiB-hours of each deployment (the larger of what it reserved and
// what it used), and on top the capacity nothing reserved on any node (idle). The charts
// are window.usageCharts.cpu and .memory. dashboard.js calls renderUsage on each refresh.
"use strict";

const usageCharts = {};
const USAGE_COLORS = ["#3366cc", "#dc3912", "#ff9900", "#109618", "#990099", "#0099c6",
                      "#dd4477", "#66aa00", "#b82e2e", "#316395"];
const IDLE_COLOR = "#c9ced8";
const USAGE_METRICS = [["cpu", "#usage-cpu", "CPU, core-hours"],
                       ["memory", "#usage-memory", "Memory, GiB-hours"]];
window.usageCharts = usageCharts;

function usageDatasets(usage, metric) {
  const sets = usage.deployments.map((d, i) => ({
    label: d.name || "standalone containers", data: d[metric], stack: "usage",
    backgroundColor: USAGE_COLORS[i % USAGE_COLORS.length] }));
  sets.push({ label: "idle", data: usage.idle[metric], stack: "usage",
              backgroundColor: IDLE_COLOR });
  return sets;
}

function hourLabel(iso) {
  return new Date(iso).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
}

function renderUsage(usage) {
  const labels = usage.dates.map(hourLabel);
  for (const [metric, canvas, title] of USAGE_METRICS) {
    const datasets = usageDatasets(usage, metric);
    const chart = usageCharts[metric];
    if (chart) {
      chart.data.labels = labels;
      chart.data.datasets = datasets;
      chart.$dates = usage.dates;
      chart.update();
      continue;
    }
    const made = new Chart($(canvas), {
      type: "bar", data: { labels, datasets },
      options: { animation: false, maintainAspectRatio: false,
                 plugins: { title: { display: true, text: title },
                            legend: { position: "bottom", labels: { boxWidth: 12 } } },
                 scales: { x: { stacked: true }, y: { stacked: true, beginAtZero: true } } },
    });
    made.$dates = usage.dates;  // the hours (UTC) the bars are, for the tests
    usageCharts[metric] = made;
  }
}
