// Draws the reports page's chart from the figures the page carries (no request of its own).
(function () {
  function draw() {
    var canvas = document.getElementById("report-chart");
    var data = document.getElementById("report-chart-data");
    if (!canvas || !data || !window.Chart || !data.textContent.trim()) return;
    var figures = JSON.parse(data.textContent);
    new window.Chart(canvas, {
      type: "bar",
      data: {
        labels: figures.labels,
        datasets: [{ label: figures.title, data: figures.counts, backgroundColor: "#2f6f9f" }],
      },
      options: {
        animation: false,
        locale: "fa-IR",
        plugins: { legend: { display: false } },
        scales: { x: { reverse: true }, y: { beginAtZero: true, ticks: { precision: 0 } } },
      },
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", draw);
  else draw();
})();
