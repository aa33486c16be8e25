"""GraphQL documents the sync worker sends (W&B's public schema, see wandb-protocol.md §3).

Every listing takes ``$cursor``/``$first`` so :meth:`GraphQLClient.pages` can drive it.
"""
from __future__ import annotations

RUN_FIELDS = """
  id name displayName state tags sweepName group jobType commit description notes host
  readOnly createdAt heartbeatAt updatedAt historyLineCount eventsLineCount projectId
  user { id name username email }
  config summaryMetrics systemMetrics historyKeys
"""

PROJECT = """
query MirrorProject($entity: String!, $project: String!) {
  project(name: $project, entityName: $entity) {
    id internalId name entityName createdAt isBenchmark readOnly
  }
}
"""

RUNS = """
query MirrorRuns($entity: String!, $project: String!, $filters: JSONString, $order: String,
                 $cursor: String, $first: Int) {
  project(name: $project, entityName: $entity) {
    internalId
    runCount(filters: $filters)
    runs(filters: $filters, order: $order, after: $cursor, first: $first) {
      edges { cursor node { %s } }
      pageInfo { endCursor hasNextPage }
    }
  }
}
""" % RUN_FIELDS

RUN_IDS = """
query MirrorRunIds($entity: String!, $project: String!, $cursor: String, $first: Int) {
  project(name: $project, entityName: $entity) {
    runs(order: "+created_at", after: $cursor, first: $first) {
      edges { cursor node { name } }
      pageInfo { endCursor hasNextPage }
    }
  }
}
"""

HISTORY_PAGE = """
query MirrorHistory($entity: String!, $project: String!, $run: String!,
                    $minStep: Int64!, $maxStep: Int64!, $samples: Int!) {
  project(name: $project, entityName: $entity) {
    run(name: $run) { history(minStep: $minStep, maxStep: $maxStep, samples: $samples) }
  }
}
"""

EVENTS = """
query MirrorEvents($entity: String!, $project: String!, $run: String!, $samples: Int!) {
  project(name: $project, entityName: $entity) { run(name: $run) { events(samples: $samples) } }
}
"""

PARQUET_HISTORY = """
query MirrorParquetHistory($entity: String!, $project: String!, $run: String!) {
  project(name: $project, entityName: $entity) {
    run(name: $run) { parquetHistory(liveKeys: ["_step"]) { parquetUrls liveData } }
  }
}
"""

FILES = """
query MirrorFiles($entity: String!, $project: String!, $run: String!, $cursor: String,
                  $first: Int) {
  project(name: $project, entityName: $entity) {
    run(name: $run) {
      fileCount
      files(after: $cursor, first: $first) {
        edges { cursor node { id name url directUrl sizeBytes mimetype updatedAt md5 } }
        pageInfo { endCursor hasNextPage }
      }
    }
  }
}
"""

SWEEPS = """
query MirrorSweeps($entity: String!, $project: String!, $cursor: String, $first: Int) {
  project(name: $project, entityName: $entity) {
    totalSweeps
    sweeps(after: $cursor, first: $first) {
      edges { cursor node { id name displayName method state description bestLoss config
                            createdAt updatedAt runCount runCountExpected } }
      pageInfo { endCursor hasNextPage }
    }
  }
}
"""

REPORTS = """
query MirrorReports($entity: String!, $project: String!, $cursor: String, $first: Int) {
  project(name: $project, entityName: $entity) {
    allViews(viewType: "runs", after: $cursor, first: $first) {
      edges { cursor node { id name displayName description spec createdAt updatedAt
                            user { id name username email photoUrl } } }
      pageInfo { endCursor hasNextPage }
    }
  }
}
"""

ARTIFACT_FIELDS = """
  __typename id versionIndex description metadata ttlDurationSeconds ttlIsInherited
  historyStep state size digest commitHash fileCount createdAt updatedAt
  tags { __typename id name }
  artifactSequence { __typename id name }
  artifactType { id name }
  aliases { __typename id alias artifactCollection { __typename name } }
"""

ARTIFACT_TYPES = """
query MirrorArtifactTypes($entity: String!, $project: String!, $cursor: String, $first: Int) {
  project(name: $project, entityName: $entity) {
    artifactTypes(after: $cursor, first: $first) {
      edges { cursor node { __typename id name description createdAt } }
      pageInfo { endCursor hasNextPage }
    }
  }
}
"""

ARTIFACT_COLLECTIONS = """
query MirrorArtifactCollections($entity: String!, $project: String!, $type: String!,
                                $cursor: String, $first: Int) {
  project(name: $project, entityName: $entity) {
    artifactType(name: $type) {
      artifactCollections(after: $cursor, first: $first) {
        edges { cursor node { __typename id name description createdAt updatedAt
                              type: defaultArtifactType { name }
                              tags { edges { node { __typename id name } } }
                              versions: artifacts(first: 1, filters: "{}") { totalCount } } }
        pageInfo { endCursor hasNextPage }
      }
    }
  }
}
"""

ARTIFACT_VERSIONS = """
query MirrorArtifactVersions($entity: String!, $project: String!, $type: String!,
                             $collection: String!, $cursor: String, $first: Int) {
  project(name: $project, entityName: $entity) {
    artifactType(name: $type) {
      artifactCollection(name: $collection) {
        artifacts(after: $cursor, first: $first, filters: "{}") {
          edges { cursor node { %s } }
          pageInfo { endCursor hasNextPage }
        }
      }
    }
  }
}
""" % ARTIFACT_FIELDS

MANIFEST = """
query MirrorManifest($id: ID!) {
  artifact(id: $id) { currentManifest { file { directUrl } } }
}
"""

_RUN_ARTIFACTS = """
query MirrorRun%(kind)s($entity: String!, $project: String!, $run: String!, $cursor: String,
                        $first: Int) {
  project(name: $project, entityName: $entity) {
    run(name: $run) {
      %(field)s(after: $cursor, first: $first) {
        edges { cursor node { %(fields)s } }
        pageInfo { endCursor hasNextPage }
      }
    }
  }
}
"""
INPUT_ARTIFACTS = _RUN_ARTIFACTS % {"kind": "Inputs", "field": "inputArtifacts",
                                    "fields": ARTIFACT_FIELDS}
OUTPUT_ARTIFACTS = _RUN_ARTIFACTS % {"kind": "Outputs", "field": "outputArtifacts",
                                     "fields": ARTIFACT_FIELDS}
