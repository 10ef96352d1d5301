// A training job's page: the link to score new sequences with its model shows once it has
// succeeded (static/jobs/job.js says so with a `job:finished` event).
(function () {
  "use strict";
  const root = document.getElementById("job");
  root.addEventListener("job:finished", (event) => {
    const row = document.getElementById("score-row");
    if (row && event.detail === "succeeded") row.hidden = false;
  });
})();
