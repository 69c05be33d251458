"""GraphQL documents the tests (and the example session of docs/getting-started.md) use."""

IMAGE_PRESIGN = """
mutation($table: String!, $prop: String!, $type: String, $name: String, $len: ContentLengthRange) {
  image_presign_url(options: {model_property: {model_schema_name: $table, property_name: $prop},
                              content_type: $type, file_name: $name, content_length: $len}) {
    upload_url upload_url_payload method key url expires_at max_size content_types headers
  }
}"""

ATTACHMENT_PRESIGN = """
mutation($table: String!, $prop: String!, $type: String, $name: String, $disp: AttachmentContentDispositionEnum,
         $len: AttachmentContentLengthRange) {
  attachment_presign_url(options: {model_property: {model_schema_name: $table, property_name: $prop},
                                   content_type: $type, file_name: $name, content_disposition: $disp,
                                   content_length: $len}) {
    upload_url upload_url_payload method key url expires_at max_size content_types headers
  }
}"""

PROPERTY_PRESIGN = """
mutation($table: String!, $prop: String!, $include: Boolean, $presign: PresignUrl) {
  property_upload_presigned_url(table: $table, property_name: $prop, include_content_type: $include,
                                presign_url: $presign) {
    upload_url upload_url_payload method key url expires_at max_size content_types headers
  }
}"""

RECORD_FIELDS = """
  id table created_at updated_at deleted_at user_id external_id properties
  upload: property_upload(name: $prop) {
    url file_name extension size content_type width height versions
    version_details { name status url width height size format error }
  }
"""

RECORD_CREATE = (
    """
mutation($table: String!, $props: [PropertyInputType], $prop: String!) {
  record_create(record: {table: $table, properties: $props}) {"""
    + RECORD_FIELDS
    + "}}"
)

RECORD_UPDATE = (
    """
mutation($id: ID!, $props: [PropertyInputType], $prop: String!) {
  record_update(id: $id, record: {properties: $props}) {"""
    + RECORD_FIELDS
    + "}}"
)

RECORD_DELETE = "mutation($id: ID!) { record_delete(id: $id) { id table deleted_at } }"

RECORD = (
    """
query($id: ID!, $prop: String!) {
  record(id: $id) {"""
    + RECORD_FIELDS
    + "}}"
)

RECORDS = (
    """
query($table: String!, $page: Int, $per_page: Int = 20, $prop: String!, $ids: [ID!]) {
  records(filter: {table: {value: $table}, id: {value_in: $ids}}, page: $page, per_page: $per_page) {
    total_entries total_pages has_next_page has_previous_page current_page per_page
    results {"""
    + RECORD_FIELDS
    + "}}}"
)

TABLES = "{ tables { name properties { name type options } } }"
