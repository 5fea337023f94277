//! The DataFusion side of line files: a [`FileFormat`] whose scans are
//! [`LineSource`]s, split into byte ranges where a file is uncompressed,
//! each file opened by a [`LineOpener`] that streams (and decompresses) it
//! into a [`LineScan`](super::scan::LineScan).

use std::collections::VecDeque;
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::catalog::Session;
use datafusion::common::tree_node::TreeNodeRecursion;
use datafusion::common::{Result, Statistics};
use datafusion::datasource::file_format::FileFormat;
use datafusion::datasource::file_format::file_compression_type::FileCompressionType;
use datafusion::datasource::listing::PartitionedFile;
use datafusion::datasource::physical_plan::{
    FileGroupPartitioner, FileOpenFuture, FileOpener, FileScanConfig, FileSource,
};
use datafusion::datasource::projection::{ProjectionOpener, SplitProjection};
use datafusion::datasource::source::DataSourceExec;
use datafusion::datasource::table_schema::TableSchema;
use datafusion::error::DataFusionError;
use datafusion::physical_expr::projection::ProjectionExprs;
use datafusion::physical_expr::{LexOrdering, PhysicalExpr};
use datafusion::physical_plan::ExecutionPlan;
use datafusion::physical_plan::metrics::ExecutionPlanMetricsSet;
use datafusion_datasource::boundary_stream::AlignedBoundaryStream;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::{ObjectMeta, ObjectStore, ObjectStoreExt};

use super::scan::{LineScan, RejectedBuilder};
use super::{
    LineCounts, LineLayout, LineOptions, ScanMode, ScanTally, compression_of, rejected_schema,
};

/// A line-oriented format: one per source and [`ScanMode`].
#[derive(Debug)]
pub struct LineFormat {
    layout: Arc<dyn LineLayout>,
    options: Arc<LineOptions>,
    mode: ScanMode,
    tally: Arc<ScanTally>,
}

impl LineFormat {
    /// The format of one source's table of rows or of rejected lines.
    pub fn new(
        layout: Arc<dyn LineLayout>,
        options: Arc<LineOptions>,
        mode: ScanMode,
        tally: Arc<ScanTally>,
    ) -> Self {
        LineFormat {
            layout,
            options,
            mode,
            tally,
        }
    }

    fn table_schema(&self) -> SchemaRef {
        match self.mode {
            ScanMode::Rows => self.layout.schema(),
            ScanMode::Rejected => rejected_schema(),
        }
    }
}

#[async_trait]
impl FileFormat for LineFormat {
    fn get_ext(&self) -> String {
        String::new()
    }

    fn get_ext_with_compression(&self, _: &FileCompressionType) -> Result<String> {
        Ok(String::new())
    }

    fn compression_type(&self) -> Option<FileCompressionType> {
        None
    }

    async fn infer_schema(
        &self,
        _state: &dyn Session,
        _store: &Arc<dyn ObjectStore>,
        _objects: &[ObjectMeta],
    ) -> Result<SchemaRef> {
        Ok(self.table_schema())
    }

    async fn infer_stats(
        &self,
        _state: &dyn Session,
        _store: &Arc<dyn ObjectStore>,
        table_schema: SchemaRef,
        _object: &ObjectMeta,
    ) -> Result<Statistics> {
        Ok(Statistics::new_unknown(&table_schema))
    }

    async fn create_physical_plan(
        &self,
        _state: &dyn Session,
        conf: FileScanConfig,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        Ok(DataSourceExec::from_data_source(conf))
    }

    fn file_source(&self, table_schema: TableSchema) -> Arc<dyn FileSource> {
        Arc::new(LineSource {
            projection: SplitProjection::unprojected(&table_schema),
            table_schema,
            layout: Arc::clone(&self.layout),
            options: Arc::clone(&self.options),
            mode: self.mode,
            tally: Arc::clone(&self.tally),
            batch_size: 8192,
            metrics: ExecutionPlanMetricsSet::new(),
        })
    }
}

/// The [`FileSource`] of a [`LineFormat`].
#[derive(Debug, Clone)]
struct LineSource {
    table_schema: TableSchema,
    projection: SplitProjection,
    layout: Arc<dyn LineLayout>,
    options: Arc<LineOptions>,
    mode: ScanMode,
    tally: Arc<ScanTally>,
    batch_size: usize,
    metrics: ExecutionPlanMetricsSet,
}

impl FileSource for LineSource {
    fn create_file_opener(
        &self,
        store: Arc<dyn ObjectStore>,
        _base_config: &FileScanConfig,
        _partition: usize,
    ) -> Result<Arc<dyn FileOpener>> {
        let opener = Arc::new(LineOpener {
            store,
            layout: Arc::clone(&self.layout),
            options: Arc::clone(&self.options),
            mode: self.mode,
            tally: Arc::clone(&self.tally),
            batch_size: self.batch_size,
            file_indices: self.projection.file_indices.clone(),
        });
        ProjectionOpener::try_new(
            self.projection.clone(),
            opener,
            self.table_schema.file_schema(),
        )
    }

    fn table_schema(&self) -> &TableSchema {
        &self.table_schema
    }

    fn with_batch_size(&self, batch_size: usize) -> Arc<dyn FileSource> {
        let mut source = self.clone();
        source.batch_size = batch_size;
        Arc::new(source)
    }

    fn try_pushdown_projection(
        &self,
        projection: &ProjectionExprs,
    ) -> Result<Option<Arc<dyn FileSource>>> {
        let mut source = self.clone();
        let merged = self.projection.source.try_merge(projection)?;
        source.projection = SplitProjection::new(self.table_schema.file_schema(), &merged);
        Ok(Some(Arc::new(source)))
    }

    fn projection(&self) -> Option<&ProjectionExprs> {
        Some(&self.projection.source)
    }

    fn metrics(&self) -> &ExecutionPlanMetricsSet {
        &self.metrics
    }

    fn file_type(&self) -> &str {
        self.layout.file_type()
    }

    fn apply_expressions(
        &self,
        f: &mut dyn FnMut(&Arc<dyn PhysicalExpr>) -> Result<TreeNodeRecursion>,
    ) -> Result<TreeNodeRecursion> {
        datafusion::physical_plan::apply_expression_roots(self.projection.source.iter(), f)
    }

    /// Only the table of rows is split: rejected lines are numbered from the
    /// start of their file.
    fn supports_repartitioning(&self) -> bool {
        self.mode == ScanMode::Rows
    }

    /// Uncompressed files are split into byte ranges; when any file is
    /// compressed, files are spread whole across partitions instead.
    fn repartitioned(
        &self,
        target_partitions: usize,
        repartition_file_min_size: usize,
        output_ordering: Option<LexOrdering>,
        config: &FileScanConfig,
    ) -> Result<Option<FileScanConfig>> {
        let any_compressed = config
            .file_groups
            .iter()
            .flat_map(|group| group.iter())
            .any(|file| compression_of(file.object_meta.location.as_ref()).is_compressed());
        if any_compressed || !self.supports_repartitioning() {
            return Ok(None);
        }
        let groups = FileGroupPartitioner::new()
            .with_target_partitions(target_partitions)
            .with_repartition_file_min_size(repartition_file_min_size)
            .with_preserve_order_within_groups(output_ordering.is_some())
            .repartition_file_groups(&config.file_groups);
        Ok(groups.map(|file_groups| {
            let mut config = config.clone();
            config.file_groups = file_groups;
            config
        }))
    }
}

struct LineOpener {
    store: Arc<dyn ObjectStore>,
    layout: Arc<dyn LineLayout>,
    options: Arc<LineOptions>,
    mode: ScanMode,
    tally: Arc<ScanTally>,
    batch_size: usize,
    file_indices: Vec<usize>,
}

impl FileOpener for LineOpener {
    fn open(&self, file: PartitionedFile) -> Result<FileOpenFuture> {
        let store = Arc::clone(&self.store);
        let meta = file.object_meta.clone();
        let range = file
            .range
            .as_ref()
            .map(|r| (r.start.max(0) as u64, r.end.max(0) as u64));
        let decoder_projection = match self.mode {
            ScanMode::Rows => self.file_indices.clone(),
            ScanMode::Rejected => Vec::new(),
        };
        let scan = LineScan {
            display: crate::storage::display_object(&self.options.location, &meta.location),
            path: meta.location.to_string(),
            range,
            decoder: self
                .layout
                .decoder(&decoder_projection, meta.location.as_ref()),
            rejected: (self.mode == ScanMode::Rejected)
                .then(|| RejectedBuilder::new(self.file_indices.clone())),
            options: Arc::clone(&self.options),
            tally: Arc::clone(&self.tally),
            batch_size: self.batch_size.max(1),
            carry: Vec::new(),
            ready: VecDeque::new(),
            line_no: 0,
            skip_header: self.options.header && range.is_none_or(|(start, _)| start == 0),
            counts: LineCounts::default(),
            done: false,
        };
        Ok(Box::pin(async move {
            let compression = compression_of(meta.location.as_ref());
            let raw: BoxStream<'static, Result<Bytes>> = match range {
                Some((start, end)) => AlignedBoundaryStream::new(
                    Arc::clone(&store),
                    meta.location.clone(),
                    start,
                    end,
                    meta.size,
                    b'\n',
                )
                .await
                .map_err(|e| scan.error(format!("cannot be read: {e}")))?
                .map_err(DataFusionError::from)
                .boxed(),
                None => store
                    .get(&meta.location)
                    .await
                    .map_err(|e| scan.error(format!("cannot be read: {e}")))?
                    .into_stream()
                    .map_err(DataFusionError::from)
                    .boxed(),
            };
            // Counted as stored (before decompression), as listed sizes are.
            let scanned = scan.options.scanned.clone();
            let raw = raw
                .inspect_ok(move |chunk| {
                    if let Some(scanned) = &scanned {
                        scanned.add(chunk.len() as u64);
                    }
                })
                .boxed();
            let input = compression.convert_stream(raw)?;
            Ok(scan.into_stream(input, store))
        }))
    }
}
